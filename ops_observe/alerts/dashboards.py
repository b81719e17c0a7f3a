"""A Grafana dashboard (JSON model) generated from the metric catalog: ``ops-observe dashboards export``.

Every query reads a metric by the name the catalog (:data:`ops_observe.metrics.specs.SPECS`) gives
it under the settings' namespace, so a renamed metric breaks the generator, not a panel in
production; the domain rows (LLM, credits, subscriptions, business, security, database) are made
from the catalog's groups, one panel per metric, so a metric added there gets its panel too. The
SLO row reads the recording rules of the ``slo`` alert pack by their fixed names.

The panels are described as plain data first (:func:`sections`), then built with Grafana's own
Python SDK, ``grafana-foundation-sdk`` (the ``dashboards`` extra), which is imported only here and
only when a dashboard is built, so the rest of the package works without it.

Template variables: ``$datasource`` (a Prometheus data source), ``$job`` (the scrape jobs exposing
the service's ``build_info``) and ``$endpoint`` (route templates, all by default). Queries use
Grafana's ``$__rate_interval``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ops_observe.metrics.specs import ID_LABELS, SPECS, MetricSpec
from ops_observe.root import Settings

SDK_MISSING = (
    "ops-observe dashboards export needs Grafana's Python SDK: pip install 'ops-observe[dashboards]' "
    "(the grafana-foundation-sdk package, on Python 3.11 and later)"
)
"""The message when the SDK is not installed."""

VARIABLES = ("datasource", "job", "endpoint")
"""The dashboard's template variables; every query filters on ``$job``, the route panels on ``$endpoint``."""

RATE = "$__rate_interval"
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""The windows of the ``slo`` pack's ``<ns>:slo_errors:ratio_rate<window>`` recording rules."""

# The catalog's groups that get a row of generated panels, with the row's title, in this order.
DOMAIN_ROWS = {
    "llm": "LLM usage and cost",
    "credit": "Credits",
    "subscription": "Subscriptions",
    "business": "Payments and business",
    "security": "Security",
    "database": "Database",
}

Kind = Literal["timeseries", "stat"]


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel, with its legend (``{{label}}`` templates)."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """One panel: its title, what it shows (the description Grafana shows on hover), its queries."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Kind = "timeseries"
    width: int = 8


@dataclass(frozen=True)
class Section:
    """A row of the dashboard and its panels."""

    title: str
    panels: tuple[PanelSpec, ...]


_SPECS = {spec.name: spec for spec in SPECS}


class _Promql:
    """Builds the selectors and expressions of one namespace, with ``job=~"$job"`` and the alert matchers."""

    def __init__(self, ns: str, matchers: Mapping[str, str], suite_paths: Sequence[str]) -> None:
        self.ns = ns
        self.base = ['job=~"$job"', *(f"{k}={json.dumps(v)}" for k, v in sorted(matchers.items()))]
        # The service-wide HTTP panels leave out the suite's own endpoints (probes, scrapes), as
        # the alerts do, so that both show the same error ratio and latency.
        paths = "|".join(_regex_escape(path) for path in suite_paths)
        self.service = (f'endpoint!~"{paths}"',) if paths else ()

    def sel(self, *extra: str) -> str:
        return "{" + ", ".join([*self.base, *extra]) + "}"

    def metric(self, name: str) -> str:
        """``<ns>_<name>``; a name the catalog lacks raises, so the dashboard cannot drift from ``/metrics``."""
        if name not in _SPECS:
            raise KeyError(f"the metric catalog has no metric {name!r}")
        return f"{self.ns}_{name}"

    def rate(self, name: str, *extra: str, by: str = "", suffix: str = "") -> str:
        inner = f"rate({self.metric(name)}{suffix}{self.sel(*extra)}[{RATE}])"
        return f"sum by ({by}) ({inner})" if by else f"sum({inner})"

    def quantile(self, q: float, name: str, *extra: str, by: str = "") -> str:
        labels = f"{by}, le" if by else "le"
        return f"histogram_quantile({q}, {self.rate(name, *extra, by=labels, suffix='_bucket')})"

    def ratio(self, numerator: str, denominator: str) -> str:
        """``numerator / denominator``, 0 (not "no data") when the numerator has no series yet."""
        return f"(({numerator}) or ({denominator}) * 0) / ({denominator})"


def sections(settings: Settings) -> list[Section]:
    """The dashboard's rows and panels as data, for the namespace and matchers of ``settings``.

    Raises :class:`~ops_observe.errors.SettingsError` for alert settings the packs refuse, as
    ``ops-observe alerts export`` does: the dashboard reads the same rules.
    """
    from ops_observe.alerts.export import alert_context

    context = alert_context(settings)
    p = _Promql(context.ns, context.alerts.matchers, context.suite_paths)
    return [
        _overview(p),
        _routes(p),
        _latency(p, settings),
        _health(p),
        _slo(p),
        *(_domain(p, group, title) for group, title in DOMAIN_ROWS.items()),
        _runtime(p),
    ]


def _http_error_ratio(p: _Promql, *scope: str, by: str = "") -> str:
    # The api pack's ratio: 5xx over every request; a client that went away (499) is no server error.
    errors = p.rate("http_requests_total", *scope, 'status=~"5.."', by=by)
    return p.ratio(errors, p.rate("http_requests_total", *scope, by=by))


def _overview(p: _Promql) -> Section:
    in_flight = f"sum({p.metric('http_requests_in_progress')}{p.sel()})"
    duration = "http_request_duration_seconds"
    failing = f"count({p.ns}_health_check_status{p.sel()} < 1) or vector(0)"
    return Section(
        "Overview",
        (
            PanelSpec("Requests", "Requests per second to the app's routes.",
                      (Query(p.rate("http_requests_total", *p.service)),), "reqps", "stat", 6),
            PanelSpec("Error ratio", "Share of 5xx answers (499, client gone, is no error), as the api pack reads it.",
                      (Query(_http_error_ratio(p, *p.service)),), "percentunit", "stat", 6),
            PanelSpec("p95 latency", "95th percentile of the request duration, the app's routes.",
                      (Query(p.quantile(0.95, duration, *p.service)),), "s", "stat", 6),
            PanelSpec("Failing health checks", "Checks whose last result is warn or fail; 0 is healthy.",
                      (Query(failing),), "short", "stat", 6),
            PanelSpec("In flight", "Requests being handled right now.", (Query(in_flight),), "short", "stat", 6),
        ),
    )  # fmt: skip


def _routes(p: _Promql) -> Section:
    route = 'endpoint=~"$endpoint"'
    duration = "http_request_duration_seconds"
    return Section(
        "Requests per route (RED)",
        (
            PanelSpec("Rate by route", "Requests per second by route template.",
                      (Query(p.rate("http_requests_total", route, by="endpoint"), "{{endpoint}}"),), "reqps"),
            PanelSpec("Errors by route", "Share of 5xx answers by route template (499, client gone, is no error).",
                      (Query(_http_error_ratio(p, route, by="endpoint"), "{{endpoint}}"),), "percentunit"),
            PanelSpec("Duration by route (p95)", "95th percentile of the request duration by route template.",
                      (Query(p.quantile(0.95, duration, route, by="endpoint"), "{{endpoint}}"),), "s"),
            PanelSpec("Answers by status", "Requests per second by status code.",
                      (Query(p.rate("http_requests_total", route, by="status"), "{{status}}"),), "reqps"),
            PanelSpec("Unhandled exceptions", "Exceptions that escaped the app, by type and route.",
                      (Query(p.rate("http_errors_total", route, by="endpoint, error_type"),
                             "{{endpoint}} {{error_type}}"),), "ops"),
            PanelSpec("Time to first byte by route (p95)", "95th percentile of the time until the response started.",
                      (Query(p.quantile(0.95, "http_time_to_first_byte_seconds", route, by="endpoint"),
                             "{{endpoint}}"),), "s"),
            PanelSpec("Response size by route", "Mean response body size by route template.",
                      (Query(_mean(p, "http_response_size_bytes", route), "{{endpoint}}"),), "bytes"),
            PanelSpec("Request size by route", "Mean request body size by route template.",
                      (Query(_mean(p, "http_request_size_bytes", route), "{{endpoint}}"),), "bytes"),
            PanelSpec("In flight by method", "Requests being handled right now, by method.",
                      (Query(f"sum by (method) ({p.metric('http_requests_in_progress')}{p.sel()})", "{{method}}"),),
                      "short"),
        ),
    )  # fmt: skip


def _mean(p: _Promql, name: str, route: str) -> str:
    total = p.rate(name, route, by="endpoint", suffix="_sum")
    return f"{total} / {p.rate(name, route, by='endpoint', suffix='_count')}"


def _latency(p: _Promql, settings: Settings) -> Section:
    duration = "http_request_duration_seconds"
    quantiles = tuple(Query(p.quantile(q, duration, *p.service), f"p{round(q * 100)}") for q in (0.5, 0.9, 0.95, 0.99))
    threshold = settings.alerts.slo.latency_threshold
    fast = p.rate(duration, f'le=~"{_le(threshold)}"', *p.service, suffix="_bucket")
    every = p.rate(duration, *p.service, suffix="_count")
    return Section(
        "Latency",
        (
            PanelSpec("Request duration percentiles", "p50, p90, p95 and p99 of the request duration, every route.",
                      quantiles, "s", width=12),
            PanelSpec(f"Requests faster than {threshold:g} s",
                      "Share of requests under the latency SLO's threshold (`alerts.slo.latency_threshold`).",
                      (Query(f"{fast} / {every}", "fast"),), "percentunit", width=12),
        ),
    )  # fmt: skip


def _le(bound: float) -> str:
    """The ``le`` regex of a bucket: prometheus-client writes ``1.0``, Prometheus 3 stores ``1``."""
    text = repr(float(bound))
    return text.replace(".0", "(\\\\.0)?") if text.endswith(".0") else _regex_escape(text)


def _regex_escape(value: str) -> str:
    """``value`` matched literally by an RE2 regex inside a PromQL string (backslashes doubled)."""
    return "".join("\\\\" + c if c in r".^$*+?()[]{}|\-" else c for c in value)


def _health(p: _Promql) -> Section:
    return Section(
        "Health checks",
        (
            PanelSpec("Check status", "Last result of each check: 1 pass, 0.5 warn, 0 fail.",
                      (Query(f"max by (check) ({p.ns}_health_check_status{p.sel()})", "{{check}}"),), width=12),
            PanelSpec("Check duration", "Duration of the last run of each check.",
                      (Query(f"max by (check) ({p.ns}_health_check_duration_seconds{p.sel()})", "{{check}}"),),
                      "s", width=12),
        ),
    )  # fmt: skip


def _slo(p: _Promql) -> Section:
    # The slo pack's ratios and budget keep ``job`` (and the matchers' labels), ``slo`` and, per
    # route, ``endpoint``; its objective is one series per ``slo``. The burn rate is the error
    # ratio over the ratio the objective allows.
    ns = p.ns
    legend = "{{job}} {{slo}} {{endpoint}}"
    allowed = f"(1 - {ns}:slo_objective:ratio)"
    burn = tuple(
        Query(f"{ns}:slo_errors:ratio_rate{w}{p.sel()} / on (slo) group_left () {allowed}", f"{legend} {w}")
        for w in SLO_WINDOWS
    )
    return Section(
        "Service level objectives",
        (
            PanelSpec("Error budget left", "Share of the 30-day error budget still left, per objective.",
                      (Query(f"{ns}:slo_error_budget:remaining{p.sel()}", legend),), "percentunit", "stat", 8),
            PanelSpec("Burn rate", "Error ratio over what the objective allows, per window: 1 spends the budget "
                      "in exactly 30 days; the pages fire at 14.4 (1 h and 5 m) and 6 (6 h and 30 m).",
                      burn, "short", width=16),
            PanelSpec("Error ratio (1 h)", "Share of bad requests over the last hour, per objective.",
                      (Query(f"{ns}:slo_errors:ratio_rate1h{p.sel()}", legend),), "percentunit", width=12),
            PanelSpec("Objective", "The objective of each SLO (`alerts.slo`).",
                      (Query(f"{ns}:slo_objective:ratio", "{{slo}}"),), "percentunit", width=12),
        ),
    )  # fmt: skip


def _domain(p: _Promql, group: str, title: str) -> Section:
    return Section(title, (*_ratios(p, group), *(_catalog_panel(p, spec) for spec in SPECS if spec.group == group)))


def _ratios(p: _Promql, group: str) -> tuple[PanelSpec, ...]:
    """The ratios a row leads with, read as the billing and infrastructure packs read them."""
    if group == "business":
        payments = "payment_transactions_total"
        failed = p.ratio(p.rate(payments, 'status="failed"'), p.rate(payments))
        return (PanelSpec("Payment failure ratio", "Share of payments that failed.", (Query(failed),), "percentunit"),)
    if group == "database":
        active, size = p.metric("db_connections_active"), p.metric("db_connections_max")
        usage = f"sum by (pool) ({active}{p.sel()}) / sum by (pool) ({size}{p.sel()})"
        return (PanelSpec("Pool usage", "Connections in use over the pool's size.", (Query(usage, "{{pool}}"),),
                          "percentunit"),)  # fmt: skip
    if group == "llm":
        cost = f"{p.rate('llm_cost_total', by='model')} * 3600"
        return (PanelSpec("LLM cost per hour", "Credits spent on LLM calls per hour, by model.",
                          (Query(cost, "{{model}}"),), "short"),)  # fmt: skip
    return ()


def _catalog_panel(p: _Promql, spec: MetricSpec) -> PanelSpec:
    """A panel for one metric of the catalog, split by every label that is not a user or org id."""
    by = ", ".join(label for label in spec.labels if label not in ID_LABELS)
    legend = " ".join(f"{{{{{label}}}}}" for label in spec.labels if label not in ID_LABELS)
    name = p.metric(spec.name)
    if spec.kind == "counter":
        expr, unit, what = p.rate(spec.name, by=by), "ops", "per second"
    elif spec.kind == "histogram":
        expr, unit, what = p.quantile(0.95, spec.name, by=by), "s", "95th percentile"
    else:
        expr = f"sum by ({by}) ({name}{p.sel()})" if by else f"sum({name}{p.sel()})"
        unit, what = "short", "now"
    return PanelSpec(_title(spec), f"{spec.help} ({what}; `{name}`)", (Query(expr, legend),), unit)


_ACRONYMS = {"llm": "LLM", "db": "DB", "api": "API"}


def _title(spec: MetricSpec) -> str:
    """``llm_tokens_total`` -> ``LLM tokens``: the metric's name, read as words."""
    words = spec.name.removesuffix("_total").removesuffix("_seconds").split("_")
    words = [_ACRONYMS.get(word, word) for word in words]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _runtime(p: _Promql) -> Section:
    process = p.sel()
    return Section(
        "Runtime and the suite",
        (
            PanelSpec("Resident memory", "Resident set size of the process.",
                      (Query(f"max by (instance) (process_resident_memory_bytes{process})", "{{instance}}"),),
                      "bytes"),
            PanelSpec("CPU", "CPU seconds per second used by the process.",
                      (Query(f"sum by (instance) (rate(process_cpu_seconds_total{process}[{RATE}]))", "{{instance}}"),),
                      "percentunit"),
            PanelSpec("Open file descriptors", "Open file descriptors over the process's limit.",
                      (Query(f"max by (instance) (process_open_fds{process} / process_max_fds{process})",
                             "{{instance}}"),), "percentunit"),
            PanelSpec("Uptime", "Seconds since the process started; a drop is a restart.",
                      (Query(f"max by (instance) (time() - process_start_time_seconds{process})", "{{instance}}"),),
                      "s"),
            PanelSpec("Spans dropped", "Spans lost before export, by reason.",
                      (Query(f"sum by (reason) (rate({p.ns}_tracing_spans_dropped_total{process}[{RATE}]))",
                             "{{reason}}"),), "ops"),
            PanelSpec("Label values over their cap", "Label values folded into the overflow value, by metric.",
                      (Query(p.rate("metrics_label_overflow_total", by="metric, label"), "{{metric}} {{label}}"),),
                      "ops"),
            PanelSpec("Builds", "The builds running: version and commit of each.",
                      (Query(f"max by (version, commit, environment) ({p.metric('build_info')}{p.sel()})",
                             "{{version}} {{commit}} {{environment}}"),), "short"),
        ),
    )  # fmt: skip


# -- the Grafana JSON model ---------------------------------------------------------------------


def build(settings: Settings) -> dict[str, Any]:
    """The dashboard's JSON model (a dict), built with ``grafana-foundation-sdk``.

    Raises ``ModuleNotFoundError`` when the SDK is not installed (see :data:`SDK_MISSING`).
    """
    from grafana_foundation_sdk.builders import dashboard as builders
    from grafana_foundation_sdk.builders import prometheus, stat, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard as models

    ns = settings.metric_namespace
    source = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
    every = models.VariableOption(selected=True, text="All", value="$__all")
    board = (
        builders.Dashboard(f"{settings.service_name} (ops_observe)")
        .uid(f"ops-observe-{ns}"[:40])
        .description(f"Generated by `ops-observe dashboards export` from the metric catalog, namespace {ns}.")
        .tags(["ops_observe", ns])
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .with_variable(builders.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            builders.QueryVariable("job")
            .label("Job")
            .datasource(source)
            .query(f"label_values({ns}_build_info, job)")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(every)
        )
        .with_variable(
            builders.QueryVariable("endpoint")
            .label("Route")
            .datasource(source)
            .query(f'label_values({ns}_http_requests_total{{job=~"$job"}}, endpoint)')
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(every)
        )
    )
    panel_id = 0
    for section in sections(settings):
        panel_id += 1
        board = board.with_row(builders.Row(section.title).collapsed(False).id(panel_id))
        for spec in section.panels:
            panel_id += 1
            panel: stat.Panel | timeseries.Panel = stat.Panel() if spec.kind == "stat" else timeseries.Panel()
            panel = panel.id(panel_id).title(spec.title).description(spec.description).datasource(source)
            panel = panel.unit(spec.unit).span(spec.width).height(4 if spec.kind == "stat" else 8)
            for index, query in enumerate(spec.queries):
                target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index))
                if query.legend:
                    target = target.legend_format(query.legend)
                panel = panel.with_target(target)
            board = board.with_panel(panel)
    model: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return model


def queries(model: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression of every panel of a dashboard model (rows' nested panels included)."""
    found: list[str] = []

    def walk(panels: Sequence[Mapping[str, Any]]) -> None:
        for panel in panels:
            found.extend(t["expr"] for t in panel.get("targets") or () if t.get("expr"))
            walk(panel.get("panels") or ())

    walk(model.get("panels") or ())
    return found


def export_command(settings: Settings, output: str | None) -> int:
    """``ops-observe dashboards export``: write the JSON model to ``output`` (stdout when ``None``)."""
    try:
        model = build(settings)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("grafana_foundation_sdk"):
            raise
        print(f"ops-observe: {SDK_MISSING}", file=sys.stderr)
        return 1
    text = json.dumps(model, indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
