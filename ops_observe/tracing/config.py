"""The tracing settings with the standard ``OTEL_*`` environment variables filled in where unset.

Precedence, per setting: ``[ops_observe.tracing]`` (or the root's service identity), then the
``OTEL_*`` variable, then the OpenTelemetry default. Resolved once per wrapped app, at build
time, so a bad variable is a :class:`~ops_observe.SettingsError` before the app serves anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import get_args

from ops_observe.errors import SettingsError
from ops_observe.root import Settings
from ops_observe.tracing.settings import Exporter, Propagator

__all__ = ["TracingConfig", "resolve"]

Bad = Callable[[str, str], SettingsError]

DEFAULT_ZIPKIN_ENDPOINT = "http://localhost:9411/api/v2/spans"
EXPORTERS: tuple[str, ...] = get_args(Exporter)
PROPAGATORS: tuple[str, ...] = get_args(Propagator)
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")

# Message templates, imported by the tests.
BAD_ENV = "{var}={value!r}: {problem}"
NO_JAEGER = 'the Jaeger exporter is gone from OpenTelemetry; Jaeger ingests OTLP: use exporter = "otlp"'


@dataclass(frozen=True)
class TracingConfig:
    """Everything the tracer provider and the middleware need, every value decided."""

    exporter: str
    zipkin_endpoint: str
    otlp_endpoint: str | None
    sample_ratio: float
    propagators: tuple[str, ...]
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay: float
    export_timeout: float
    shutdown_timeout: float


def resolve(settings: Settings, environ: Mapping[str, str] | None = None) -> TracingConfig:
    """Fill every unset tracing setting from ``environ`` (default: ``os.environ``) or the OTel default."""
    env = os.environ if environ is None else environ
    section = settings.tracing
    source = settings.source

    def bad(var: str, problem: str) -> SettingsError:
        return SettingsError(
            source,
            "tracing",
            BAD_ENV.format(var=var, value=env.get(var), problem=problem),
        )

    exporter: str | None = section.exporter
    if exporter is None:
        exporter = "none"
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
            raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
            if raw == "jaeger":
                raise bad("OTEL_TRACES_EXPORTER", NO_JAEGER)
            if raw and raw not in EXPORTERS:
                raise bad("OTEL_TRACES_EXPORTER", "expected one of " + ", ".join(EXPORTERS))
            exporter = raw or "none"

    ratio = section.sample_ratio
    if ratio is None:
        ratio = 1.0
        sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
        if sampler in RATIO_SAMPLERS and env.get("OTEL_TRACES_SAMPLER_ARG", "").strip():
            ratio = _number(env, "OTEL_TRACES_SAMPLER_ARG", bad)
            if not 0 <= ratio <= 1:
                raise bad("OTEL_TRACES_SAMPLER_ARG", "must be between 0 and 1")
        elif sampler in ("always_off", "parentbased_always_off"):
            ratio = 0.0

    propagators: tuple[str, ...] | None = section.propagators
    if propagators is None:
        raw_list = [p.strip().lower() for p in env.get("OTEL_PROPAGATORS", "").split(",") if p.strip()]
        for name in raw_list:
            if name not in PROPAGATORS and name != "none":
                raise bad(
                    "OTEL_PROPAGATORS",
                    f"{name!r} is not one of " + ", ".join(PROPAGATORS),
                )
        propagators = tuple(p for p in raw_list if p != "none") if raw_list else ("tracecontext", "baggage")

    return TracingConfig(
        exporter=exporter,
        zipkin_endpoint=section.zipkin_endpoint or env.get("OTEL_EXPORTER_ZIPKIN_ENDPOINT") or DEFAULT_ZIPKIN_ENDPOINT,
        otlp_endpoint=section.otlp_endpoint,  # None: the OTLP exporter reads OTEL_EXPORTER_OTLP_* itself
        sample_ratio=ratio,
        propagators=propagators,
        max_queue_size=section.max_queue_size or int(_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", bad, 2048)),
        max_export_batch_size=section.max_export_batch_size
        or int(_number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", bad, 512)),
        schedule_delay=section.schedule_delay or _number(env, "OTEL_BSP_SCHEDULE_DELAY", bad, 5000) / 1000,
        export_timeout=section.export_timeout or _number(env, "OTEL_BSP_EXPORT_TIMEOUT", bad, 10000) / 1000,
        shutdown_timeout=section.shutdown_timeout,
    )


def _number(env: Mapping[str, str], var: str, bad: Bad, default: float | None = None) -> float:
    raw = env.get(var, "").strip()
    if not raw and default is not None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad(var, "expected a number") from None
    if value < 0 or (default is not None and value == 0):
        raise bad(var, "must be greater than 0")
    return value
