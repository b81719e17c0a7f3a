"""Lock-free accumulation of the HTTP metrics, folded into the prometheus-client metrics on collection.

prometheus-client takes a lock for every ``inc`` and two or more for every ``observe``; an HTTP
request touches one counter and four histograms, which made most of the middleware's cost. Here
each ``(method, endpoint, status)`` has a :class:`Series` of plain cumulative numbers, updated by
the middleware on the event loop without locks; a :class:`Flusher`, registered on the app's
registry before the metrics, adds what accumulated since the last collection into the real
metric children whenever the registry is collected (a scrape, ``get_sample_value``...), so every
reader sees exact values.

Only the reader (the flusher) tracks what it already applied, and the writer only ever increases
the numbers, so an update racing with a collection is never lost: it is applied by the next one.

Used in single-process mode only: in multiprocess mode the values must reach the shared files at
once (another worker may answer the scrape), so the middleware observes directly.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric

HISTOGRAMS = ("duration", "ttfb", "request_size", "response_size")


@functools.cache
def batchable() -> bool:
    """Whether this prometheus-client version's histograms have the internals the flush adds to.

    Checked once on a throwaway histogram of no registry (in single-process mode only: in
    multiprocess mode a child would leave a series in the shared files).
    """
    child = Histogram("ops_observe_probe", "probe", registry=None)
    buckets = getattr(child, "_buckets", None)
    return isinstance(buckets, list) and hasattr(child, "_sum") and hasattr(child, "_upper_bounds")


class Histo:
    """Cumulative bucket counts (not cumulated across buckets) and sum of one histogram child."""

    __slots__ = ("applied", "applied_sum", "child", "counts", "sum")

    def __init__(self, child: Any, size: int) -> None:
        self.child = child
        self.counts = [0] * size
        self.sum = 0.0
        self.applied = [0] * size
        self.applied_sum = 0.0

    def flush(self) -> None:
        counts, applied = self.counts, self.applied
        buckets = self.child._buckets
        for i in range(len(counts)):
            delta = counts[i] - applied[i]
            if delta:
                buckets[i].inc(delta)
                applied[i] += delta
        total = self.sum
        delta_sum = total - self.applied_sum
        if delta_sum:
            self.child._sum.inc(delta_sum)
            self.applied_sum = total


class Series:
    """The accumulators of one ``(method, endpoint, status)``."""

    __slots__ = ("applied_requests", "duration", "request_size", "requests", "requests_child", "response_size", "ttfb")

    def __init__(self, requests_child: Any, histogram_children: Sequence[Any]) -> None:
        self.requests_child = requests_child
        self.requests = 0
        self.applied_requests = 0
        duration, ttfb, request_size, response_size = (
            Histo(child, len(child._upper_bounds)) for child in histogram_children
        )
        self.duration = duration
        self.ttfb = ttfb
        self.request_size = request_size
        self.response_size = response_size

    def flush(self) -> None:
        requests = self.requests
        delta = requests - self.applied_requests
        if delta:
            self.requests_child.inc(delta)
            self.applied_requests = requests
        self.duration.flush()
        self.ttfb.flush()
        self.request_size.flush()
        self.response_size.flush()


class Flusher:
    """A collector that yields nothing: collecting it folds every pending accumulation into the metrics.

    Registered on the registry before the HTTP metrics, so a registry collection flushes first.
    """

    def __init__(self) -> None:
        self.sources: list[Callable[[], Iterable[Series]]] = []
        self.lock = threading.Lock()  # two concurrent scrapes must not apply the same delta twice

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        self.flush()
        return []

    def flush(self) -> None:
        """Apply everything accumulated since the last flush."""
        with self.lock:
            for source in self.sources:
                for series in list(source()):
                    series.flush()
