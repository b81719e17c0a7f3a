"""``ops-observe dashboards export``: the Grafana JSON model, and every one of its queries answered.

The model is checked as JSON (variables, rows, panels, data source references); then a real
Prometheus, with the exported rules loaded (the SLO recording rules among them), scrapes the demo
served by uvicorn after it served traffic that fills every metric of the catalog, and every query
of every panel, template variables substituted, must return data: no panel on a metric that does
not exist, or on labels it does not have.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack import Stack, serve_exercised_demo

from ops_observe.alerts import dashboards, export
from ops_observe.cli import main
from ops_observe.settings import load_settings

from services import free_port

JOB = "ops-center-dashboards"
NS = "ops_center"

SETTINGS = """\
[ops_observe]
service_name = "ops-center"
middleware = ["correlation", "tracing", "logging", "metrics"]

[ops_observe.logging]
level = "WARNING"

[ops_observe.tracing]
exporter = "none"

[ops_observe.metrics]
label_caps = {{ feature_access_total = 3 }}

[ops_observe.health.checks.self]
plugin = "tcp"
host = "127.0.0.1"
port = {port}

[ops_observe.alerts]
job = "{job}"
"""

# What Grafana puts in place of the template variables when every job and route is selected.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$job": JOB, "$endpoint": ".*"}


def _settings_file(directory: Path, port: int = 8000) -> Path:
    path = directory / "ops_observe.toml"
    path.write_text(SETTINGS.format(port=port, job=JOB))
    return path


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in model["panels"]:
        found.append(panel)
        found.extend(panel.get("panels") or ())
    return found


@pytest.fixture
def model(tmp_path: Path) -> dict[str, Any]:
    """The dashboard as ``ops-observe dashboards export -o FILE`` writes it."""
    pytest.importorskip("grafana_foundation_sdk", reason="optional: ops-observe[dashboards]")
    out = tmp_path / "dashboard.json"
    assert main(["dashboards", "export", "--settings", str(_settings_file(tmp_path)), "-o", str(out)]) == 0
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def test_the_export_is_a_dashboard_with_the_expected_rows_and_panels(model: dict[str, Any]) -> None:
    assert model["uid"] == f"ops-observe-{NS}"
    assert [v["name"] for v in model["templating"]["list"]] == list(dashboards.VARIABLES)
    job = model["templating"]["list"][1]
    assert job["query"] == f"label_values({NS}_build_info, job)"
    rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
    assert rows == [
        "Overview", "Requests per route (RED)", "Latency", "Health checks", "Service level objectives",
        "LLM usage and cost", "Credits", "Subscriptions", "Payments and business", "Security", "Database",
        "Runtime and the suite",
    ]  # fmt: skip
    panels = [p for p in _panels(model) if p["type"] != "row"]
    titles = {p["title"] for p in panels}
    assert {
        "Rate by route", "Errors by route", "Duration by route (p95)", "Request duration percentiles", "In flight",
        "Check status", "LLM tokens", "LLM cost per hour", "Credit balance", "Payment failure ratio",
        "User registrations", "Webhook deliveries", "Burn rate", "Error budget left", "Pool usage",
    } <= titles  # fmt: skip
    ids = [p["id"] for p in _panels(model)]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["description"]
    queries = dashboards.queries(model)
    assert len(queries) == sum(len(p["targets"]) for p in panels)
    assert all('job=~"$job"' in q for q in queries if "slo_objective" not in q)


def test_the_route_panels_filter_on_the_endpoint_variable(model: dict[str, Any]) -> None:
    row = next(i for i, p in enumerate(model["panels"]) if p["title"] == "Requests per route (RED)")
    route_panels = model["panels"][row + 1 : row + 9]
    assert all('endpoint=~"$endpoint"' in t["expr"] for p in route_panels for t in p["targets"])


def test_every_query_parses_as_promql(model: dict[str, Any]) -> None:
    promql_parser = pytest.importorskip("promql_parser")
    for query in dashboards.queries(model):
        promql_parser.parse(_substitute(query))


def test_a_metric_the_catalog_lacks_cannot_be_put_on_the_dashboard() -> None:
    with pytest.raises(KeyError, match="no metric 'http_requests'"):
        dashboards._Promql(NS, {}, ()).metric("http_requests")


def test_the_alerts_matchers_go_into_every_selector(tmp_path: Path) -> None:
    pytest.importorskip("grafana_foundation_sdk", reason="optional: ops-observe[dashboards]")
    settings = load_settings({"service_name": "ops-center", "alerts": {"matchers": {"namespace": "prod"}}})
    queries = dashboards.queries(dashboards.build(settings))
    assert all('namespace="prod"' in q for q in queries if "slo_objective" not in q)


def test_without_the_sdk_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "grafana_foundation_sdk"] or ["grafana_foundation_sdk"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it fails as when it is not installed
    assert dashboards.export_command(load_settings({}), None) == 1
    assert capsys.readouterr().err == f"ops-observe: {dashboards.SDK_MISSING}\n"


def _substitute(query: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        query = query.replace(variable, value)
    assert "$" not in query, query
    return query


# -- against a real Prometheus ------------------------------------------------------------------


@dataclass
class Served:
    stack: Stack
    model: dict[str, Any]


def _traffic(url: str) -> None:
    """One round of everything the demo and its extra routes answer: every metric gets a sample."""
    with httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": "key-1"}) as client:
        client.get("/items/1")
        client.get("/items/99")
        client.get("/slow", params={"seconds": "0.01"})
        client.post("/credits/purchase", json={"amount": 5, "user_id": "u-1"})
        client.post("/llm/chat", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        client.get("/unauthorized")
        client.get("/limited")
        client.post("/exercise")
    httpx.get(f"{url}/boom", headers={"Connection": "close"}, timeout=10)  # uvicorn closes after a raise


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    pytest.importorskip("grafana_foundation_sdk", reason="optional: ops-observe[dashboards]")
    workdir = tmp_path_factory.mktemp("dashboards")
    port = free_port()
    settings_file = _settings_file(workdir, port)  # the health check probes the app's own port
    settings = load_settings(str(settings_file))
    stack = Stack(workdir, {JOB: f"127.0.0.1:{port}"}, export.render(settings))
    try:
        stack.add(serve_exercised_demo(workdir, settings_file, port))
        url = f"http://127.0.0.1:{port}"
        _traffic(url)
        stack.start()
        # Two more rounds a few scrapes apart, so every rate() has increases inside its window.
        stack.wait_for_samples(f'up{{job="{JOB}"}} == 1')
        _traffic(url)
        stack.wait_for_samples(f'{NS}:slo_errors:ratio_rate5m{{job="{JOB}"}}')
        _traffic(url)
        stack.wait(
            lambda: stack.query(f'increase({NS}_http_requests_total{{job="{JOB}", endpoint="/exercise"}}[1m]) > 0'),
            what="the last round scraped",
        )
        yield Served(stack, dashboards.build(settings))
    finally:
        stack.stop()


def test_every_query_of_every_panel_returns_data(served: Served) -> None:
    queries = dashboards.queries(served.model)
    assert len(queries) > 60
    empty = [query for query in queries if not served.stack.query(_substitute(query))]
    assert not empty, "no data for:\n" + "\n".join(empty) + "\n" + served.stack.diagnostics()


def test_the_template_variables_list_the_scraped_job_and_routes(served: Served) -> None:
    jobs = served.stack.api("label/job/values", **{"match[]": f"{NS}_build_info"})
    assert jobs == [JOB]
    routes = served.stack.api("label/endpoint/values", **{"match[]": f'{NS}_http_requests_total{{job=~"{JOB}"}}'})
    assert {"/items/{item_id}", "/boom", "/exercise", "/llm/chat"} <= set(routes)
