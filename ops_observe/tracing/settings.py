"""Settings of the OpenTelemetry tracing.

A setting left unset (the ``None`` defaults) falls back to the standard ``OTEL_*`` environment
variable named in its doc, then to the OpenTelemetry default; ``ops_observe.tracing.config``
does that resolution once, when the app is wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ops_observe.schema import between, positive, setting

Exporter = Literal["none", "console", "zipkin", "otlp"]
Propagator = Literal["tracecontext", "baggage", "b3", "b3multi"]
Instrumentation = Literal["httpx", "redis", "psycopg", "asyncpg"]

DEFAULT_SENSITIVE_PARAMS = ("auth", "code", "key", "sig")
"""Query-parameter words secret in URLs though not in the secrets vocabulary (OAuth's ``code``,
a signed URL's ``sig``, a bare ``key``); ``token``, ``password``, ``api_key``... are already there."""


def _param_names(values: tuple[str, ...]) -> None:
    for value in values:
        if not value or any(c in value for c in "&=# "):
            raise ValueError(f"{value!r} is not a query parameter name")


@dataclass(frozen=True)
class TracingSettings:
    """``[ops_observe.tracing]``: the tracer provider, its exporter, propagation and sampling."""

    enabled: bool | None = setting(
        None,
        doc="Build the tracer provider and its export thread; unset: when `tracing` is in `middleware`.",
    )
    exporter: Exporter | None = setting(
        None,
        doc='Where finished spans go; unset: `$OTEL_TRACES_EXPORTER`, else `"none"` '
        "(request ids for log lines only; the OpenTelemetry context is left alone).",
    )
    zipkin_endpoint: str | None = setting(
        None,
        doc='Zipkin v2 JSON endpoint, for `exporter = "zipkin"`; unset: `$OTEL_EXPORTER_ZIPKIN_ENDPOINT`, '
        "else `http://localhost:9411/api/v2/spans`.",
    )
    otlp_endpoint: str | None = setting(
        None,
        doc='OTLP/HTTP traces endpoint, for `exporter = "otlp"`; unset: `$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, '
        "`$OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else `http://localhost:4318/v1/traces`.",
    )
    sample_ratio: float | None = setting(
        None,
        doc="Share of successful requests kept (parent-based); failed ones are always kept. "
        "Unset: `$OTEL_TRACES_SAMPLER_ARG` with a ratio `$OTEL_TRACES_SAMPLER`, else 1.0.",
        check=between(0, 1),
    )
    propagators: tuple[Propagator, ...] | None = setting(
        None,
        doc="Context propagation formats, read and written; unset: `$OTEL_PROPAGATORS`, else tracecontext, baggage.",
    )
    message_spans: bool = setting(
        False,
        doc="Also record the per-message `http receive` / `http send` spans of the ASGI middleware.",
    )
    keep_error_children: bool = setting(
        False,
        doc="Also record the child spans of requests the ratio drops, so that a failed one is exported whole; "
        "each child span then costs what a sampled one does.",
    )
    instrument: tuple[Instrumentation, ...] = setting(
        (),
        doc="Libraries to auto-instrument; each needs its `opentelemetry-instrumentation-<name>` package.",
    )
    sensitive_params: tuple[str, ...] = setting(
        DEFAULT_SENSITIVE_PARAMS,
        doc="More secret words for query parameters, whose values are replaced by `REDACTED` in recorded URLs; "
        "every name the secrets vocabulary calls secret (`token`, `password`, `api_key`...) is replaced anyway.",
        check=_param_names,
    )
    exclude_paths: tuple[str, ...] = setting(
        (),
        doc="Request paths never traced, besides the suite's own endpoints (`/health`, `/metrics`...).",
    )
    max_queue_size: int | None = setting(
        None,
        doc="Finished spans waiting for export; more are dropped and counted. "
        "Unset: `$OTEL_BSP_MAX_QUEUE_SIZE`, else 2048.",
        check=positive,
    )
    max_export_batch_size: int | None = setting(
        None,
        doc="Spans per export call. Unset: `$OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, else 512.",
        check=positive,
    )
    schedule_delay: float | None = setting(
        None,
        doc="Seconds between exports. Unset: `$OTEL_BSP_SCHEDULE_DELAY` (ms), else 5.",
        check=positive,
    )
    export_timeout: float | None = setting(
        None,
        doc="Seconds one export may take. Unset: `$OTEL_BSP_EXPORT_TIMEOUT` (ms), else 10.",
        check=positive,
    )
    shutdown_timeout: float = setting(
        5.0,
        doc="Seconds the flush at lifespan shutdown and at exit may take before the rest is dropped.",
        check=positive,
    )
