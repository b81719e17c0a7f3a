"""The alerts feature: its settings section. Rule packs are exported by the CLI, not served."""

from __future__ import annotations

from ops_observe.alerts.settings import AlertsSettings
from ops_observe.suite import Suite

SETTINGS = AlertsSettings
"""The ``[ops_observe.alerts]`` section."""


def install(suite: Suite) -> None:
    """Nothing to install into a wrapped app: alert rules run in Prometheus, not in the process."""
