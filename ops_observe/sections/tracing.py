"""Settings of the OpenTelemetry tracing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ops_observe.schema import between, setting


@dataclass(frozen=True)
class TracingSettings:
    """``[ops_observe.tracing]``: the tracer provider, its exporter and sampling."""

    exporter: Literal["none", "console", "zipkin", "otlp"] = setting("none", doc="Where finished spans go.")
    zipkin_endpoint: str = setting(
        "http://localhost:9411/api/v2/spans", doc="Zipkin v2 JSON endpoint, for `exporter = \"zipkin\"`."
    )
    sample_ratio: float = setting(1.0, doc="Share of successful requests kept; failed ones are always kept.", check=between(0, 1))
