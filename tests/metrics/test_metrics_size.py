"""The exposition's size: no ``_created`` series and no histograms of the suite's own endpoints by
default (each with a setting to keep them), both formats still valid, and the documented sizes."""

from __future__ import annotations

import subprocess

import pytest
from metrics_support import (
    NS,
    call,
    restore_logging,  # noqa: F401 - an autouse fixture
    run,
    scrape,
    wrap,
)
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ops_observe.metrics import reference
from ops_observe.metrics.catalog import Catalog
from ops_observe.metrics.exposition import WithoutCreated
from ops_observe.metrics.middleware import MetricsMiddleware
from ops_observe.metrics.settings import MetricsSettings
from ops_observe.types import Message, Receive, Scope, Send

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
OWN = ("/metrics", "/health", "/health/ready", "/health/detailed")
HISTOGRAMS = ("http_request_duration_seconds", "http_time_to_first_byte_seconds", "http_request_size_bytes",
              "http_response_size_bytes")  # fmt: skip


def app_with_items() -> Starlette:
    async def item(request: Request) -> Response:
        return PlainTextResponse("item")

    return Starlette(routes=[Route("/items/{item_id}", item)])


def suite_app(**metrics: object) -> object:
    """The metrics and health features on a small app, with both kinds of traffic sent."""
    app = wrap(app_with_items(), **metrics)
    call(app, "/items/1", "/items/2", "/nope", *OWN, ("POST", "/metrics"))
    return app


def sample_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def endpoints_of(text: str, metric: str) -> set[str]:
    return {
        s.labels["endpoint"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(f"{NS}_{metric}") and "endpoint" in s.labels
    }


def test_no_created_series_by_default_in_either_format() -> None:
    app = suite_app()
    text = scrape(app)
    assert not [name for name in sample_names(text) if name.endswith("_created")]
    assert "_created" not in text
    om = scrape(app, headers=OPENMETRICS)
    families = list(openmetrics_families(om))  # the strict OpenMetrics parser accepts it
    assert families
    assert not [s.name for f in families for s in f.samples if s.name.endswith("_created")]
    assert om.endswith("# EOF\n")


def test_created_series_on_request() -> None:
    app = suite_app(created_series=True)
    names = sample_names(scrape(app))
    assert f"{NS}_http_requests_created" in names
    assert f"{NS}_http_request_duration_seconds_created" in names
    om = scrape(app, headers=OPENMETRICS)
    assert f"{NS}_http_requests_created" in {s.name for f in openmetrics_families(om) for s in f.samples}


def test_only_this_apps_exposition_changes() -> None:
    """Not prometheus-client's process-wide switch: another registry keeps its _created series."""
    plain = wrap(app_with_items())
    keeping = wrap(app_with_items(), created_series=True)
    call(plain, "/items/1")
    call(keeping, "/items/1")
    assert f"{NS}_http_requests_created" not in sample_names(scrape(plain))
    assert f"{NS}_http_requests_created" in sample_names(scrape(keeping))
    registry = CollectorRegistry()
    Counter("other", "another library's counter", registry=registry).inc()
    assert b"other_created" in generate_latest(registry)


def test_a_gauge_named_created_and_custom_collectors_are_left_alone() -> None:
    registry = CollectorRegistry()
    Gauge("job_created", "a gauge whose own name ends in _created", registry=registry).set(3)
    Counter("jobs", "a counter", registry=registry).inc()
    filtered = WithoutCreated(registry)
    text = generate_latest(filtered).decode()  # type: ignore[arg-type]
    assert "job_created 3.0" in text
    assert "jobs_total 1.0" in text
    assert "jobs_created" not in text
    # Filtering copies: the registry's own metrics still have them (a collector may reuse its objects).
    assert b"jobs_created" in generate_latest(registry)


def test_own_endpoints_are_counted_without_histograms() -> None:
    text = scrape(suite_app())
    counted = endpoints_of(text, "http_requests_total")
    assert counted >= {"/items/{item_id}", "<unmatched>", *OWN}
    for histogram in HISTOGRAMS:
        assert endpoints_of(text, histogram) == {"/items/{item_id}", "<unmatched>"}, histogram
    # The POST answered 405 by /metrics is counted too.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    statuses = {
        (s.labels["method"], s.labels["status"])
        for s in families[f"{NS}_http_requests"].samples
        if s.labels.get("endpoint") == "/metrics"
    }
    assert statuses == {("GET", "200"), ("POST", "405")}


def test_own_endpoint_histograms_on_request() -> None:
    text = scrape(suite_app(own_endpoint_histograms=True))
    for histogram in HISTOGRAMS:
        assert endpoints_of(text, histogram) >= {"/items/{item_id}", *OWN}, histogram


def test_own_endpoints_observed_directly_are_counted_without_histograms() -> None:
    """The unbatched path (multiprocess mode observes directly) drops the same histograms."""
    catalog = Catalog(CollectorRegistry(), NS, MetricsSettings(), b"k")
    catalog.multiprocess = True  # only the flag: observe directly, as with shared files

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = MetricsMiddleware(answer, catalog=catalog, own_endpoints=["/health"])
    assert not middleware.batched
    for path in ("/health", "/app"):
        run(middleware({"type": "http", "method": "GET", "path": path, "headers": []}, _receive, _discard))
    registry = catalog.registry
    total = f"{NS}_http_requests_total"
    assert registry.get_sample_value(total, {"method": "GET", "endpoint": "/health", "status": "200"}) == 1
    count = f"{NS}_http_request_duration_seconds_count"
    assert registry.get_sample_value(count, {"method": "GET", "endpoint": "/health", "status": "200"}) is None
    assert registry.get_sample_value(count, {"method": "GET", "endpoint": "<unmatched>", "status": "200"}) == 1


@pytest.mark.parametrize("settings", [{}, {"created_series": True, "own_endpoint_histograms": True}])
def test_both_settings_pass_promtool(promtool: str, settings: dict[str, bool]) -> None:
    text = scrape(suite_app(**settings))
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_documented_sizes_hold() -> None:
    """docs/metrics.md's table, measured again: within a quarter of what the page says."""
    for variant, overrides in reference.SIZE_VARIANTS.items():
        measured = reference.measure_exposition(overrides)
        documented = reference.SIZES[variant]
        for key, size in documented.items():
            assert 0.75 * size <= measured[key] <= 1.25 * size, (
                f"{variant}: {key} is {measured[key]} bytes, the page says {size}; "
                "update SIZES from python -m ops_observe.metrics.reference --measure"
            )
    defaults = reference.SIZES["defaults"]
    before = reference.SIZES[next(v for v in reference.SIZE_VARIANTS if v.startswith("both"))]
    assert defaults["after"] < 0.75 * before["after"]  # what the defaults are for


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None
