"""The root settings object: the service's identity, the middleware list and one section per concern."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ops_observe.alerts.settings import AlertsSettings
from ops_observe.correlation.settings import CorrelationSettings
from ops_observe.health.settings import HealthSettings
from ops_observe.logging.settings import LoggingSettings
from ops_observe.metrics.settings import MetricsSettings
from ops_observe.schema import metric_name, non_empty, setting, unique
from ops_observe.tracing.settings import TracingSettings

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")


@dataclass(frozen=True)
class Settings:
    """``[ops_observe]``: everything the suite reads, validated and immutable."""

    service_name: str = setting("app", doc="Name of the service, in logs, spans and health answers.", check=non_empty)
    namespace: str | None = setting(
        None, doc="Metric name prefix; default: `service_name` with every other character made `_`.", check=metric_name
    )
    version: str = setting("dev", doc="Version of the service, e.g. `${APP_VERSION:-dev}`.")
    environment: str = setting("development", doc="Deployment environment, e.g. `production`.")
    commit: str = setting("unknown", doc="Source commit the service was built from, e.g. `${GIT_COMMIT:-unknown}`.")
    build_date: str = setting("unknown", doc="When the service was built, e.g. `${BUILD_DATE:-unknown}`.")
    middleware: tuple[str, ...] = setting(
        ("correlation", "tracing", "logging", "metrics"),
        doc="Middleware aliases (group `ops_observe.middleware`) or dotted paths; first = outermost. "
        "Tracing outside logging and metrics puts trace ids in access-log lines and exemplars.",
        check=unique,
    )
    correlation: CorrelationSettings = setting(doc="Correlation IDs.", factory=CorrelationSettings)
    logging: LoggingSettings = setting(doc="JSON logs and the access log.", factory=LoggingSettings)
    metrics: MetricsSettings = setting(doc="Prometheus metrics.", factory=MetricsSettings)
    tracing: TracingSettings = setting(doc="OpenTelemetry tracing.", factory=TracingSettings)
    health: HealthSettings = setting(doc="Health endpoints and checks.", factory=HealthSettings)
    alerts: AlertsSettings = setting(doc="Alert-rule packs.", factory=AlertsSettings)
    source: str = dataclasses.field(default="<defaults>", compare=False)
    """Where these settings came from (a file name, ``<dict>`` or ``<defaults>``), for error messages."""

    @property
    def metric_namespace(self) -> str:
        """The metric name prefix: ``namespace``, or one derived from ``service_name``."""
        if self.namespace:
            return self.namespace
        derived = _NOT_NAME.sub("_", self.service_name).strip("_").lower()
        return derived if derived and not derived[0].isdigit() else f"app_{derived}"
