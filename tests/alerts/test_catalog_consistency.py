"""Every metric every rule reads exists in the catalog, with every label the rule matches on or groups by.

The rules are walked with the PromQL parser (ops_observe/alerts/promql.py) and checked by the
same code as `ops-observe alerts check`, against what a real wrapped app exposes once every
catalog metric was recorded (catalog_support.py): nothing is listed by hand, so renaming a metric
or a label in the catalog, or a typo in a pack, fails here.
"""

from __future__ import annotations

import catalog_support
import pytest
from catalog_support import CUSTOMISED, DEFAULT, NS

from ops_observe.alerts.check import Exposition, Report, check_rules, target_labels
from ops_observe.alerts.export import alerts, rule_groups
from ops_observe.alerts.rules import Alert, Recording, RuleGroup
from ops_observe.metrics.specs import SPECS
from ops_observe.settings import load_settings

SETTINGS = {"default": (DEFAULT, False), "customised": (CUSTOMISED, True)}
"""Each settings case and whether its service runs in multiprocess mode."""


def _report(case: str) -> Report:
    data, multiprocess = SETTINGS[case]
    settings = load_settings(data)
    exposition = catalog_support.exposition(multiprocess)
    return check_rules(rule_groups(settings), exposition, target_labels=target_labels(settings))


@pytest.mark.parametrize("case", SETTINGS)
def test_every_rule_reads_exposed_metrics_and_labels(case: str) -> None:
    report = _report(case)
    assert report.problems == (), "\n".join(str(p) for p in report.problems)
    assert report.unverified == (), "metrics without series: the app should record them"
    assert report.rules > 50 and report.selectors > report.rules


def test_every_alert_is_checked_enabled_once() -> None:
    enabled: set[str] = set()
    every: set[str] = set()
    for data, _ in SETTINGS.values():
        found = alerts(load_settings(data))
        every |= {a.name for a in found}
        enabled |= {a.name for a in found if a.enabled}
    assert every - enabled == set()
    assert len(every) >= 50


@pytest.mark.parametrize("multiprocess", [False, True])
def test_the_exposition_is_the_catalog(multiprocess: bool) -> None:
    """What the rules are checked against holds every catalog metric with exactly its labels."""
    exposed = catalog_support.exposition(multiprocess)
    for spec in SPECS:
        name = f"{NS}_{spec.name}"
        names = {name: set(spec.labels)}
        if spec.kind == "histogram":
            names = {f"{name}_bucket": {*spec.labels, "le"}, f"{name}_sum": set(spec.labels),
                     f"{name}_count": set(spec.labels)}  # fmt: skip
        for sample, labels in names.items():
            if multiprocess and spec.kind == "gauge":
                labels = labels | ({"pid"} if spec.mode not in ("livesum", "max", "mostrecent") else set())
            assert exposed.labels(sample) == labels, sample


# -- the check fails on a wrong rule -------------------------------------------------------------


def _one(expr: str, *recordings: Recording) -> RuleGroup:
    alert = Alert(name="Constructed", pack="test", expr=expr, severity="warning", summary="s", description="d",
                  runbook_url="u")  # fmt: skip
    return RuleGroup(name="ops_observe.test", rules=(*recordings, alert))


def _problems(group: RuleGroup) -> list[str]:
    return [str(p) for p in check_rules([group], catalog_support.exposition()).problems]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            f"sum by (job) (rate({NS}_http_request_total[5m])) > 1",
            f"Constructed: {NS}_http_request_total: no such metric in the exposition (did you mean {NS}_http_requests_total?)",
        ),
        (
            f'sum by (job, route) (rate({NS}_http_requests_total{{stauts=~"5.."}}[5m])) > 1',
            f"Constructed: {NS}_http_requests_total: missing labels route, stauts (it has endpoint, method, status)",
        ),
        (
            f"histogram_quantile(0.95, sum by (job) (rate({NS}_http_request_duration_seconds_bucket[5m]))) > 1",
            f"Constructed: {NS}_http_request_duration_seconds_bucket: the rule relies on label le, aggregated away before",
        ),
        (
            f"sum by (le) (rate({NS}_http_request_duration_seconds_count[5m]))",
            f"Constructed: {NS}_http_request_duration_seconds_count: missing label le (it has endpoint, method, status)",
        ),
        (
            f'{NS}_health_check_status{{name="db"}} == 0',
            f"Constructed: {NS}_health_check_status: missing label name (it has check)",
        ),
        (
            f"{NS}:slo_errors:ratio_rate5m > 0.1",
            f"Constructed: {NS}:slo_errors:ratio_rate5m: no recording rule of the export produces it",
        ),
    ],
)
def test_a_rule_on_a_wrong_metric_or_label_fails(expr: str, expected: str) -> None:
    assert _problems(_one(expr)) == [expected]


def test_a_recorded_series_is_followed_into_its_recording_rules() -> None:
    record = f"{NS}:test_errors:rate5m"
    ok = Recording(record=record, pack="test", expr=f"sum by (job, endpoint) (rate({NS}_http_requests_total[5m]))",
                   labels={"slo": "availability"})  # fmt: skip
    assert _problems(_one(f'{record}{{slo="availability", endpoint="/"}} > 1', ok)) == []
    # the alert selects by a label its recording rule aggregates away
    flat = Recording(record=record, pack="test", expr=f"sum by (job) (rate({NS}_http_requests_total[5m]))")
    assert _problems(_one(f'{record}{{endpoint="/"}} > 1', flat)) == [
        f"Constructed: {NS}_http_requests_total: the rule relies on label endpoint, aggregated away before "
        f"[read through recording rule {record}]"
    ]
    # no recording rule has the label value the alert selects
    assert _problems(_one(f'{record}{{slo="latency"}} > 1', ok)) == [
        f'Constructed: {record}: no recording rule of the export produces it with slo="latency"'
    ]
    # a broken recording rule is reported once, as itself, not again by every alert that reads it
    broken = Recording(record=record, pack="test", expr=f"sum by (job, code) (rate({NS}_http_requests_total[5m]))")
    assert _problems(_one(f"{record} > 1", broken)) == [
        f"{record}: {NS}_http_requests_total: missing label code (it has endpoint, method, status)"
    ]


def test_the_packs_fail_on_a_renamed_label() -> None:
    """The real rules against an exposition where ``endpoint`` became ``route``: each one reading it fails."""
    exposed = catalog_support.exposition()
    drifted = {
        name: (frozenset(labels) - {"endpoint"}) | {"route"} if labels and "endpoint" in labels else labels
        for name, labels in exposed.series.items()
    }
    report = check_rules(rule_groups(load_settings(DEFAULT)), Exposition(drifted))
    lines = [str(p) for p in report.problems]
    assert f"HighAPIErrorRate: {NS}_http_requests_total: missing label endpoint (it has method, route, status)" in lines
    assert any(line.startswith(f"SlowAPIResponse: {NS}_http_request_duration_seconds_bucket: missing label endpoint")
               for line in lines)  # fmt: skip
    assert all("missing label endpoint" in line for line in lines)
