"""Lock-free accumulation of the HTTP metrics, folded into the prometheus-client metrics on collection.

prometheus-client takes a lock for every ``inc`` and two or more for every ``observe``; an HTTP
request touches one counter and four histograms, which made most of the middleware's cost. Here
each ``(method, endpoint, status)`` has a :class:`Series`: the middleware appends one tuple per
request to it (the request's four observations), on the event loop, without a lock.
:meth:`Series.fold` sorts a whole batch into the buckets at once (the batch sorted, then one
``bisect`` per bucket bound: about a third of the cost of one ``bisect`` per sample). It runs when
the batch reaches :data:`BATCH` samples (with the middleware's cap on the label sets it batches,
``BATCHED_SERIES``, memory stays bounded without scrapes), and whenever the
registry is collected (a scrape, ``get_sample_value``...): a :class:`Flusher`, registered on the
app's registry before the metrics, folds, then adds what accumulated since the last collection to
the real metric children, so every reader sees exact values.

Nothing is lost or counted twice when a collection in another thread races with the event loop:
a fold takes the samples present when it starts off the front of the list (``del samples[:n]``,
one step under the GIL) while appends go to its end, folds hold the series' lock, and only the
flusher tracks what it already applied, to numbers that only ever increase.

Used in single-process mode only: in multiprocess mode the values must reach the shared files at
once (another worker may answer the scrape), so the middleware observes directly.
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric

HISTOGRAMS = ("duration", "ttfb", "request_size", "response_size")
"""The histograms of a sample, in its order: ``(duration, ttfb, request size, response size)``."""
BATCH = 256
"""Samples a series holds before the middleware folds them itself (the memory bound between scrapes)."""

Sample = tuple[float, float, int, int]


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
    """Bucket counts (not cumulated across buckets) and sum of one histogram child, as folded so far."""

    __slots__ = ("applied", "applied_sum", "bounds", "child", "counts", "sum")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds = tuple(child._upper_bounds)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.applied = [0] * len(self.bounds)
        self.applied_sum = 0.0

    def add(self, values: Sequence[float]) -> None:
        """Count ``values`` into the buckets: a value goes to the first bound ``>=`` it, as prometheus-client."""
        ordered = sorted(values)
        counts = self.counts
        below = 0
        for index, bound in enumerate(self.bounds):
            upto = bisect_right(ordered, bound)  # how many values are <= bound
            counts[index] += upto - below
            below = upto
        self.sum += sum(values)

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
    """The samples of one ``(method, endpoint, status)`` not folded yet, and its folded accumulators.

    The middleware appends a :data:`Sample` to ``samples`` per request and calls :meth:`fold` when
    there are :data:`BATCH` of them.
    """

    __slots__ = ("applied_requests", "histograms", "lock", "requests", "requests_child", "samples")

    def __init__(self, requests_child: Any, histogram_children: Sequence[Any]) -> None:
        self.requests_child = requests_child
        self.samples: list[Sample] = []
        self.requests = 0
        self.applied_requests = 0
        self.histograms = tuple(Histo(child) for child in histogram_children)  # in HISTOGRAMS' order
        self.lock = threading.Lock()

    def fold(self) -> None:
        """Sort the samples appended so far into the buckets (the request counter counts them)."""
        with self.lock:
            self._fold()

    def flush(self) -> None:
        """Fold, then add to the metric children what was folded since the last flush."""
        with self.lock:  # one consistent step: the request count and the buckets together
            self._fold()
            requests = self.requests
            delta = requests - self.applied_requests
            if delta:
                self.requests_child.inc(delta)
                self.applied_requests = requests
            for histogram in self.histograms:
                histogram.flush()

    def _fold(self) -> None:
        samples = self.samples
        count = len(samples)
        if not count:
            return
        taken = samples[:count]
        del samples[:count]  # appends made meanwhile are past ``count``: kept for the next fold
        self.requests += count
        for histogram, values in zip(self.histograms, zip(*taken, strict=True), strict=True):
            histogram.add(values)


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
