"""A bounded span queue exported by one background thread: a dead or slow collector costs requests nothing.

The SDK's ``BatchSpanProcessor`` is close, but its ``force_flush`` ignores its timeout (a hanging
collector blocks the caller for the exporter's whole timeout), it logs a warning for every
dropped span, and its drop counts go to an OpenTelemetry meter rather than the app's Prometheus
registry. :class:`ExportQueue` keeps the same model (a deque, a daemon thread, batches) with:

- ``on_end`` (the request's share) is a length check and an ``append``; a full queue drops the
  span and counts it, it never waits;
- every flush and shutdown is bounded by its timeout; spans still queued then are counted as dropped;
- each dropped span is counted by reason through ``on_drop`` (``queue_full``, ``export_failed``,
  ``shutdown``); export failures are logged once, then at most once a minute;
- span attributes pass through ``transform`` (the PII redactor) on the export thread, off the request path;
- after a fork the child starts with an empty queue and its own thread.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from opentelemetry import context as context_api
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ops_observe.tracing.sampling import pending

__all__ = ["ExportQueue"]

logger = logging.getLogger("ops_observe.tracing")

QUEUE_FULL = "queue_full"
EXPORT_FAILED = "export_failed"
SHUTDOWN = "shutdown"
DROP_REASONS = (QUEUE_FULL, EXPORT_FAILED, SHUTDOWN)

_LOG_EVERY = 60.0  # seconds between two logged export failures


class ExportQueue(SpanProcessor):
    """A span processor that hands sampled spans to ``exporter`` in batches, on a background thread.

    Args:
        exporter: Where batches go (Zipkin, OTLP, console...).
        max_queue_size: Spans kept waiting; one more is dropped and counted as ``queue_full``.
        max_export_batch_size: Spans per ``exporter.export`` call; a batch this big wakes the thread.
        schedule_delay: Seconds the thread sleeps between exports otherwise.
        on_drop: Called ``on_drop(reason, count)`` for dropped spans; ``None`` ignores drops.
        transform: Applied to every span on the export thread before export (redaction); ``None``: none.
        shutdown_timeout: Seconds a flush or the shutdown waits at most when not given a timeout.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay: float = 5.0,
        on_drop: Callable[[str, int], None] | None = None,
        transform: Callable[[ReadableSpan], ReadableSpan] | None = None,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = min(max_export_batch_size, max_queue_size)
        self.schedule_delay = schedule_delay
        self.on_drop = on_drop or _ignore
        self.transform = transform
        self.timeout_millis = int(shutdown_timeout * 1000)
        self._closed = False
        self._last_failure_log = -_LOG_EVERY
        self._start()
        if hasattr(os, "register_at_fork"):
            reinit = weakref.WeakMethod(self._start)

            def after_fork_in_child() -> None:
                method = reinit()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=after_fork_in_child)

    def _start(self) -> None:
        """Fresh queue, events and thread: at construction and in a forked child (threads do not survive a fork)."""
        self._pid = os.getpid()
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._flushes: list[tuple[int, threading.Event]] = []
        self._flush_lock = threading.Lock()
        self._enqueued = 0
        self._done = 0
        self._stopping = False
        if self._closed:
            return
        self._thread = threading.Thread(target=self._run, name="ops_observe-span-export", daemon=True)
        self._thread.start()

    # -- the request's side ---------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: context_api.Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a sampled span, or drop and count it when the queue is full or closed."""
        span_context = span.context
        if span_context is None:
            return
        if not span_context.trace_flags.sampled:
            held = pending.get()
            if held is not None and span_context.trace_id == held.trace_id and len(held.spans) < held.limit:
                held.spans.append(span)
            return
        self.enqueue(span)

    def release(self, spans: Sequence[ReadableSpan]) -> None:
        """Export spans that were held back, sampled or not (the children of a failed request)."""
        for span in spans:
            self.enqueue(span)

    def enqueue(self, span: ReadableSpan) -> None:
        """Queue ``span`` for export, or drop and count it when the queue is full or closed."""
        if self._closed:
            self.on_drop(SHUTDOWN, 1)
            return
        if self._pid != os.getpid():  # forked without register_at_fork (not on CPython/Linux)
            self._start()
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self.on_drop(QUEUE_FULL, 1)
            return
        queue.append(span)
        self._enqueued += 1
        if len(queue) >= self.max_export_batch_size:
            self._wake.set()

    # -- the export thread ----------------------------------------------------------------------

    def _run(self) -> None:
        # The exporter's own HTTP calls must not be traced (httpx/requests instrumentation).
        context_api.attach(context_api.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        while not self._stopping:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[ReadableSpan] = []
            while queue and len(batch) < self.max_export_batch_size:
                batch.append(queue.popleft())
            self._export(batch)
            self._done += len(batch)
            self._release_flushes()
        self._release_flushes()

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        if self.transform is not None:
            batch = [self.transform(span) for span in batch]
        try:
            result = self.exporter.export(batch)
        except Exception as exc:
            self._failed(len(batch), repr(exc))
            return
        if result is not SpanExportResult.SUCCESS:
            self._failed(len(batch), "the exporter reported a failure")

    def _failed(self, count: int, why: str) -> None:
        self.on_drop(EXPORT_FAILED, count)
        now = time.monotonic()
        if now - self._last_failure_log >= _LOG_EVERY:
            self._last_failure_log = now
            logger.warning(
                "span export failed, %d spans dropped (%s); further failures are only counted",
                count,
                why,
            )

    def _release_flushes(self) -> None:
        with self._flush_lock:
            waiting = [(target, event) for target, event in self._flushes if self._done < target]
            for target, event in self._flushes:
                if self._done >= target:
                    event.set()
            self._flushes = waiting

    # -- flush and shutdown ---------------------------------------------------------------------

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Wait until every span queued so far is exported (or failed), at most ``timeout_millis``."""
        if timeout_millis is None:
            timeout_millis = self.timeout_millis
        if self._closed:
            return False
        event = threading.Event()
        with self._flush_lock:
            target = self._enqueued
            if self._done >= target:
                return True
            self._flushes.append((target, event))
        self._wake.set()
        return event.wait(timeout_millis / 1000)

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Export what is queued within ``timeout_millis``, then stop; spans still queued are counted as dropped."""
        if self._closed:
            return
        if timeout_millis is None:
            timeout_millis = self.timeout_millis
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_millis / 1000)
        left = len(self._queue)
        self._queue.clear()
        if left:
            self.on_drop(SHUTDOWN, left)
        try:
            self.exporter.shutdown()
        except Exception:  # shutting down must not raise into the server's shutdown
            logger.warning("span exporter failed to shut down", exc_info=True)


def _ignore(reason: str, count: int) -> None:
    return None
