"""The lock-free accumulation of the HTTP metrics (``ops_observe.metrics.http``): the same numbers as
prometheus-client observing each request directly, whenever folds and flushes happen, and from any thread."""

from __future__ import annotations

import sys
import threading
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from ops_observe.metrics.http import BATCH, Series

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZES = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0)


class Pair:
    """One series fed through the accumulation, and the same metrics observed directly, side by side."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reference = CollectorRegistry()
        self.series = Series(*self._metrics(self.registry, "acc"))
        self.requests, self.histograms = self._metrics(self.reference, "ref")

    @staticmethod
    def _metrics(registry: CollectorRegistry, prefix: str) -> tuple[Any, list[Any]]:
        requests = Counter(f"{prefix}_requests", "requests", registry=registry)
        histograms = [
            Histogram(f"{prefix}_{name}", name, buckets=buckets, registry=registry)
            for name, buckets in (("duration", LATENCY), ("ttfb", LATENCY), ("req", SIZES), ("resp", SIZES))
        ]
        return requests, histograms

    def observe(self, sample: tuple[float, float, int, int]) -> None:
        self.series.samples.append(sample)  # what the middleware does
        if len(self.series.samples) >= BATCH:
            self.series.fold()
        self.requests.inc()
        for histogram, value in zip(self.histograms, sample, strict=True):
            histogram.observe(value)

    def values(self, registry: CollectorRegistry, prefix: str) -> dict[str, float]:
        found = {}
        for family in registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                name = sample.name.removeprefix(prefix)
                found[f"{name}{sorted(sample.labels.items())}"] = sample.value
        return found

    def assert_equal(self) -> None:
        self.series.flush()
        ours, theirs = self.values(self.registry, "acc"), self.values(self.reference, "ref")
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            if key.endswith("_sum[]"):
                assert abs(ours[key] - value) <= 1e-9 * max(1.0, abs(value)), key
            else:
                assert ours[key] == value, key  # counts and buckets: exactly


bounds = st.sampled_from(LATENCY)
seconds = st.one_of(bounds, st.floats(min_value=0, max_value=20, allow_nan=False))
sizes = st.one_of(st.sampled_from((100, 1_000, 10_000)), st.integers(min_value=0, max_value=2_000_000))
samples = st.tuples(seconds, seconds, sizes, sizes)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.one_of(samples, st.sampled_from(("fold", "flush"))), max_size=60))
def test_the_same_numbers_as_observing_directly_whenever_folds_and_flushes_happen(steps: list[Any]) -> None:
    pair = Pair()
    for step in steps:
        if step == "fold":
            pair.series.fold()
        elif step == "flush":
            pair.series.flush()
        else:
            pair.observe(step)
    pair.assert_equal()  # a value on a bound is in that bound's bucket, as prometheus-client puts it


def test_the_samples_held_stay_under_the_batch_and_a_batch_is_counted_whole() -> None:
    pair = Pair()
    for i in range(3 * BATCH + 7):
        pair.observe((i / 1000, i / 2000, i, 2 * i))
        assert len(pair.series.samples) < BATCH
    pair.assert_equal()


def test_a_collection_in_another_thread_loses_nothing_and_sees_whole_requests() -> None:
    pair = Pair()
    stop = threading.Event()
    torn: list[tuple[float, float]] = []

    def collector() -> None:
        while not stop.is_set():
            pair.series.flush()
            values = pair.values(pair.registry, "acc")
            requests, counted = values["_requests_total[]"], values["_duration_count[]"]
            if requests != counted:
                torn.append((requests, counted))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch every few bytecodes: a race shows within the run
    thread = threading.Thread(target=collector)
    thread.start()
    try:
        for i in range(5 * BATCH):
            pair.observe((0.001 * (i % 50), 0.0005, i % 300, 2_000))
            pair.series.fold()  # as often as can be: every fold races with the collector's flushes
    finally:
        stop.set()
        thread.join(timeout=30)
        sys.setswitchinterval(interval)
    assert torn == []  # each flush shows the request count and the histograms of the same requests
    pair.assert_equal()


def test_the_docs_give_the_batch_size() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert f"every {BATCH}\n  requests of a series" in text


def test_label_sets_past_the_batched_ones_are_observed_directly_and_counted_the_same(monkeypatch: Any) -> None:
    import asyncio

    import ops_observe
    from ops_observe.metrics import middleware as metrics_middleware
    from ops_observe.types import Receive, Scope, Send

    monkeypatch.setattr(metrics_middleware, "BATCHED_SERIES", 2)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": int(scope["path"][1:]), "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = ops_observe.wrap(app, settings={"service_name": "svc", "middleware": ["metrics"]})

    async def drive() -> None:
        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            return None

        for _ in range(3):
            for status in (200, 201, 202, 203):
                scope = {"type": "http", "method": "GET", "path": f"/{status}", "headers": [], "query_string": b""}
                await wrapped(scope, receive, send)

    asyncio.run(drive())
    middleware = wrapped.stack
    while not isinstance(middleware, metrics_middleware.MetricsMiddleware):
        middleware = middleware.app
    batched = {labels[2]: children.series is not None for labels, children in middleware.by_labels.items()}
    assert batched == {"200": True, "201": True, "202": False, "203": False}
    get = wrapped.suite.registry.get_sample_value
    for status in ("200", "201", "202", "203"):
        labels = {"method": "GET", "endpoint": "<unmatched>", "status": status}
        assert get("svc_http_requests_total", labels) == 3
        assert get("svc_http_request_duration_seconds_count", labels) == 3
        assert get("svc_http_response_size_bytes_sum", labels) == 6
