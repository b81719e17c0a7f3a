"""Settings of the Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass

from ops_observe.schema import setting, url_path


@dataclass(frozen=True)
class MetricsSettings:
    """``[ops_observe.metrics]``: the HTTP metrics middleware and the ``/metrics`` endpoint."""

    enabled: bool = setting(True, doc="Serve the metrics endpoint.")
    path: str = setting("/metrics", doc="Path of the Prometheus exposition endpoint.", check=url_path)
