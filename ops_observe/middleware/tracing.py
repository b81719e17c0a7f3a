"""Placeholder for the tracing middleware: passes every request through until the feature lands."""

from __future__ import annotations

from ops_observe.sections.root import Settings
from ops_observe.types import ASGIApp


def from_settings(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The entry point of the tracing middleware."""
    return app
