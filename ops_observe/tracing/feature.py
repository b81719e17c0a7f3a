"""Installs the tracing feature into a wrapped app's suite.

``install(suite)`` builds the app's own tracer provider (never the process-global one) from
``[ops_observe.tracing]``, the drop counter on the suite's registry, auto-instrumentation when
enabled, and the flushes: at lifespan shutdown and at interpreter exit, each bounded by
``shutdown_timeout``. The export thread starts here; a forked worker gets its own thread and an
empty queue (see :class:`ops_observe.tracing.export.ExportQueue`).
"""

from __future__ import annotations

import atexit
import weakref

import anyio.to_thread
from prometheus_client import Counter

from ops_observe.suite import Suite
from ops_observe.tracing.export import DROP_REASONS
from ops_observe.tracing.provider import TracingRuntime, build_runtime, forget_latest, instrument
from ops_observe.tracing.settings import TracingSettings

__all__ = ["DROPPED_METRIC", "STATE_KEY", "install"]

STATE_KEY = "tracing"
"""``suite.state[STATE_KEY]`` holds the app's :class:`~ops_observe.tracing.provider.TracingRuntime`."""

DROPPED_METRIC = "{ns}_tracing_spans_dropped"
"""Counter (``_total`` in the exposition) of spans lost before export, by ``reason``."""

SETTINGS = TracingSettings
"""The ``[ops_observe.tracing]`` section."""


def install(suite: Suite) -> None:
    """Build the tracing runtime of one wrapped app and register its flush hooks.

    Nothing happens unless ``tracing`` is in ``middleware`` or ``tracing.enabled`` is true.
    """
    settings = suite.settings
    if not suite.feature_on("tracing", settings.tracing.enabled):
        return
    dropped = Counter(
        DROPPED_METRIC.format(ns=settings.metric_namespace),
        "Finished spans dropped before export: queue_full (collector too slow or down), "
        "export_failed (the collector refused or was unreachable), shutdown (still queued at exit).",
        ["reason"],
        registry=suite.registry,
    )
    children = {reason: dropped.labels(reason=reason) for reason in DROP_REASONS}

    def on_drop(reason: str, count: int) -> None:
        children[reason].inc(count)

    runtime = build_runtime(settings, on_drop=on_drop)
    if settings.tracing.instrument:
        instrument(settings.tracing.instrument, settings.source, runtime.propagator)
    suite.state[STATE_KEY] = runtime
    forget_latest()  # the newest wrapped app is the default, over a runtime built by hand before it

    async def shutdown() -> None:
        # The flush waits on the export thread; off the event loop so other shutdown hooks run.
        # anyio, not asyncio.to_thread: the app may be served under trio.
        await anyio.to_thread.run_sync(runtime.shutdown)

    suite.on_shutdown(shutdown)
    _at_exit(runtime)


def _at_exit(runtime: TracingRuntime) -> None:
    """Flush at interpreter exit without keeping the runtime alive until then."""
    ref = weakref.ref(runtime)

    def flush() -> None:
        alive = ref()
        if alive is not None:
            alive.shutdown()

    atexit.register(flush)
