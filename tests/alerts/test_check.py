"""The pieces of `alerts check`: reading an exposition, the series Prometheus writes, rules it cannot parse."""

from __future__ import annotations

import pytest

from ops_observe.alerts.check import Exposition, Problem, check_rules
from ops_observe.alerts.rules import Alert, RuleGroup

TEXT = """\
# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{route="/",code="200"} 3.0
app_requests_total{route="/",code="500",extra="x"} 1.0
# HELP app_jobs_total Jobs, none yet.
# TYPE app_jobs_total counter
# HELP app_latency_seconds Latency.
# TYPE app_latency_seconds histogram
# HELP app_up Up.
# TYPE app_up gauge
app_up 1.0
"""


def _problems(expr: str, text: str = TEXT) -> list[str]:
    alert = Alert(name="A", pack="p", expr=expr, severity="info", summary="", description="", runbook_url="")
    return [str(p) for p in check_rules([RuleGroup("g", (alert,))], Exposition.parse(text)).problems]


def test_an_exposition_gives_each_sample_name_the_union_of_its_labels() -> None:
    exposed = Exposition.parse(TEXT)
    assert exposed.labels("app_requests_total") == {"route", "code", "extra"}
    assert exposed.labels("app_up") == set()
    # declared without a series: it exists, its labels are unknown, by the sample names its type shows
    assert exposed.labels("app_jobs_total") is None
    assert {"app_latency_seconds_bucket", "app_latency_seconds_sum", "app_latency_seconds_count"} <= set(exposed.series)
    with pytest.raises(KeyError):
        exposed.labels("app_other")


def test_openmetrics_is_read_too() -> None:
    text = '# TYPE app_requests counter\napp_requests_total{route="/"} 1.0\n# EOF\n'
    assert Exposition.parse(text, openmetrics=True).labels("app_requests_total") == {"route"}


def test_a_metric_without_series_is_not_verified_rather_than_failed() -> None:
    alert = Alert(name="A", pack="p", expr='sum by (queue) (rate(app_jobs_total{kind="x"}[5m])) > 0', severity="info",
                  summary="", description="", runbook_url="")  # fmt: skip
    report = check_rules([RuleGroup("g", (alert,))], Exposition.parse(TEXT))
    assert report.ok and report.unverified == ("app_jobs_total",)
    assert (
        report.summary()
        == "1 rule, 1 selector checked: 0 problems; labels not verified (no series yet): app_jobs_total"
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (job, route) (rate(app_requests_total{code=~"5.."}[5m])) > 0', []),
        # series Prometheus writes itself, with the target labels only
        ("up == 0", []),
        ('ALERTS{alertstate="firing", alertname="X"} > 0', []),
        ('up{zone="a"} == 0', ["A: up: missing label zone (it has no labels)"]),
        ("app_up{region='eu'} == 0", ["A: app_up: missing label region (it has no labels)"]),
        ("sum by (job) (rate(app_requests_total[5m]) > 0", ["A: not valid PromQL: "]),
        (
            '{__name__=~"app_.*"} > 0',
            ['A: {__name__=~"app_.*"}: the selector names no metric, so it cannot be checked'],
        ),
    ],
)
def test_problems(expr: str, expected: list[str]) -> None:
    found = _problems(expr)
    assert len(found) == len(expected)
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start)


def test_target_labels_are_not_expected_in_the_exposition() -> None:
    assert _problems('sum by (job, instance, namespace) (rate(app_requests_total{namespace="prod"}[5m]))') == [
        "A: app_requests_total: missing label namespace (it has code, extra, route)"
    ]
    alert = Alert(name="A", pack="p", expr='app_up{namespace="prod"}', severity="info", summary="", description="",
                  runbook_url="")  # fmt: skip
    report = check_rules([RuleGroup("g", (alert,))], Exposition.parse(TEXT), target_labels={"job", "namespace"})
    assert report.ok


def test_a_disabled_alert_is_not_checked() -> None:
    alert = Alert(name="A", pack="p", expr="nothing_here > 0", severity="info", summary="", description="",
                  runbook_url="", enabled=False)  # fmt: skip
    report = check_rules([RuleGroup("g", (alert,))], Exposition.parse(TEXT))
    assert report.ok and report.rules == 0


def test_problem_lines() -> None:
    assert str(Problem("R", "m", ("a", "b"), detail="it has c")) == "R: m: missing labels a, b (it has c)"
    assert (
        str(Problem("R", "m", via="ns:x:rate5m"))
        == "R: m: no such metric in the exposition [read through recording rule ns:x:rate5m]"
    )
