"""Installs the tracing feature into a wrapped app's suite."""

from __future__ import annotations

from ops_observe.suite import Suite


def install(suite: Suite) -> None:
    """Register the tracing endpoints and lifespan hooks of one wrapped app."""
