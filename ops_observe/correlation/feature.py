"""The correlation feature: its settings section; its middleware (alias ``correlation``) does the work."""

from __future__ import annotations

from ops_observe.correlation.settings import CorrelationSettings
from ops_observe.suite import Suite

SETTINGS = CorrelationSettings
"""The ``[ops_observe.correlation]`` section."""


def install(suite: Suite) -> None:
    """Nothing to install: the correlation middleware needs no endpoint, hook or process change."""
