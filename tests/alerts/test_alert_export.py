"""The packs' rules as exported: every summary rule by name and threshold, the conventions, the overrides.

The expressions are read through the PromQL parser, never with regular expressions.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from alerts_support import CHECKS, make_settings, matchers, nodes, selectors
from hypothesis import given
from hypothesis import strategies as st

from ops_observe import plugins
from ops_observe.alerts import export
from ops_observe.alerts.rules import SEVERITIES, Alert, Recording
from ops_observe.alerts.settings import DEFAULT_RUNBOOK_BASE, PACKS
from ops_observe.errors import PluginError, SettingsError
from ops_observe.metrics.specs import SPECS

NS = "ops_center"
GiB = 2**30

# The Ops-Center summary, section 6: every rule by name, pack, threshold, `for` and the window it counts over
# (as the parser prints it: 24h is 1d).
SUMMARY = [
    ("HighAPIErrorRate", "api", 0.01, "5m", "5m"),
    ("CriticalAPIErrorRate", "api", 0.05, "2m", "5m"),
    ("SlowAPIResponse", "api", 0.5, "10m", "5m"),
    ("VerySlowAPIResponse", "api", 2, "5m", "5m"),
    ("HighAPIRequestRate", "api", 1000, "5m", "5m"),
    ("LowCreditBalance", "billing", 100, "5m", None),
    ("CriticalCreditBalance", "billing", 10, "1m", None),
    ("HighCreditUsage", "billing", 1000, "30m", "1h"),
    ("PaymentFailed", "billing", 3, "0m", "5m"),
    ("SubscriptionChurn", "billing", 10, "0m", "1d"),
    ("LLMCostSpike", "billing", 3, "15m", "1d"),
    ("HighAuthFailureRate", "security", 10, "5m", "5m"),
    ("RateLimitExceeded", "security", 100, "2m", "1m"),
    ("SuspiciousAPIKeyUsage", "security", 1000, "0m", "5m"),
    ("UnauthorizedAccessAttempts", "security", 50, "0m", "5m"),
    ("DatabaseConnectionPoolExhausted", "infrastructure", 2, "5m", None),
    ("SlowDatabaseQueries", "infrastructure", 1, "10m", "5m"),
    ("HighMemoryUsage", "infrastructure", 2 * GiB, "10m", None),
    ("KeycloakDown", "infrastructure", None, "2m", None),
    ("RedisDown", "infrastructure", None, "2m", None),
    ("PostgreSQLDown", "infrastructure", None, "1m", None),
    ("LiteLLMProxyDown", "infrastructure", None, "5m", None),
    ("LowUserRegistrations", "business", 5, "1h", "1d"),
    ("LowActiveUsers", "business", 10, "30m", "1h"),
    ("HighFeatureAccessDenials", "business", 100, "30m", "1h"),
    ("WebhookDeliveryFailures", "business", 10, "5m", "1h"),
]

COUNTERS = {f"{NS}_{spec.name}" for spec in SPECS if spec.kind == "counter"} | {
    f"{NS}_{spec.name}_{suffix}" for spec in SPECS if spec.kind == "histogram" for suffix in ("bucket", "count", "sum")
} | {f"{NS}_tracing_spans_dropped_total", "process_cpu_seconds_total"}  # fmt: skip


def by_name(settings: Any) -> dict[str, Alert]:
    return {alert.name: alert for alert in export.alerts(settings)}


def numbers(expr: str) -> set[float]:
    return {node.val for node, _ in nodes(expr) if isinstance(node, promql_parser.NumberLiteral)}


def ranges(expr: str) -> set[str]:
    found = set()
    for node, _ in nodes(expr):
        if isinstance(node, promql_parser.MatrixSelector):
            found.add(re.sub(r"\s", "", str(node)).rpartition("[")[2].rstrip("]"))
    return found


# -- the packs, by name --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "pack", "threshold", "for_", "window"), SUMMARY)
def test_every_summary_rule_by_name_and_threshold(
    name: str, pack: str, threshold: float | None, for_: str, window: str | None
) -> None:
    alert = by_name(make_settings())[name]
    assert (alert.pack, alert.threshold, alert.for_, alert.enabled) == (pack, threshold, for_, True)
    if threshold is not None:
        assert threshold in numbers(alert.expr)
    if window is not None:
        assert window in ranges(alert.expr)


def test_at_least_fifty_alerts_in_eight_packs() -> None:
    alerts = export.alerts(make_settings())
    names = [alert.name for alert in alerts]
    assert len(names) == len(set(names)) >= 50
    assert {alert.pack for alert in alerts} == set(PACKS)
    groups = export.rule_groups(make_settings())
    assert [group.name for group in groups] == [f"ops_observe.{pack}" for pack in PACKS]
    for group in groups:
        assert {rule.pack for rule in group.rules} == {group.name.removeprefix("ops_observe.")}


def test_the_runtime_suite_and_slo_packs_watch_what_the_issue_names() -> None:
    names = set(by_name(make_settings()))
    assert {"HighProcessCPU", "FileDescriptorsNearLimit", "FileDescriptorsExhausted", "FrequentRestarts",
            "ProcessMemoryGrowing"} <= names  # fmt: skip
    assert {"TracingSpansDropped", "MetricLabelOverflow", "HealthCheckFailing", "HealthCheckSlow",
            "MultiprocessDirectoryGrowing", "TargetDown", "ServiceMetricsAbsent"} <= names  # fmt: skip
    burn = {f"{kind}BurnRate{window}" for kind in ("Availability", "Latency") for window in ("1h", "6h", "1d", "3d")}
    assert burn | {"ErrorBudgetLow", "ErrorBudgetExhausted"} <= names


# -- conventions ---------------------------------------------------------------------------------


def test_every_alert_follows_the_mixin_conventions() -> None:
    for alert in export.alerts(make_settings()):
        assert alert.severity in SEVERITIES
        assert alert.summary and alert.description
        if not alert.expr.startswith("absent("):  # absent() has only the labels its selector matches by equality
            assert "{{ $labels." in alert.description, alert.name
        if alert.threshold is not None:  # a "down" or absent() alert's value is always 0 or 1
            assert "{{ $value" in alert.description, alert.name
        assert "$threshold" not in alert.expr + alert.summary + alert.description, alert.name
        assert alert.runbook_url == f"{DEFAULT_RUNBOOK_BASE}#{alert.name.lower()}"
        assert re.fullmatch(r"\d+[smhd]", alert.for_), alert.name
        promql_parser.parse(alert.expr)


def test_counters_are_read_only_through_rate_or_increase() -> None:
    settings = make_settings(metrics={"multiprocess_dir": None})
    for group in export.rule_groups(settings):
        for rule in group.rules:
            for node, parents in nodes(rule.expr):
                if isinstance(node, promql_parser.VectorSelector) and node.name in COUNTERS:
                    call = next(p for p in reversed(parents) if isinstance(p, promql_parser.Call))
                    assert call.func.name in ("rate", "increase"), (_name(rule), node.name, call.func.name)


def test_every_division_is_guarded_against_an_empty_or_zero_denominator() -> None:
    for group in export.rule_groups(make_settings()):
        for rule in group.rules:
            for node, parents in nodes(rule.expr):
                if not (isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "/"):
                    continue
                if not any(isinstance(n, promql_parser.VectorSelector) for n, _ in _subtree(node.rhs)):
                    continue  # a number: `/ (1 - 0.999)`
                guard = next(p for p in reversed(parents) if not isinstance(p, promql_parser.ParenExpr))
                assert str(guard.op) == "and", _name(rule)
                condition = _unparen(guard.rhs)
                assert str(condition.op) == ">" and condition.rhs.val == 0, _name(rule)
                assert _unparen(condition.lhs).prettify() == _unparen(node.rhs).prettify(), _name(rule)


def test_499_is_not_an_error_and_5xx_are() -> None:
    settings = make_settings()
    rules = [
        r for g in export.rule_groups(settings) for r in g.rules if "slo_errors" in _name(r) or "ErrorRate" in _name(r)
    ]
    seen = 0
    for rule in rules:
        for selector in selectors(rule.expr):
            status = matchers(selector).get("status")
            if selector.name == f"{NS}_http_requests_total" and status is not None:
                assert status[0] == "=~" and re.fullmatch(status[1], "503") and not re.fullmatch(status[1], "499")
                seen += 1
    assert seen >= 5


def test_probes_and_scrapes_are_not_api_traffic() -> None:
    settings = make_settings(health={"path": "/healthz", "checks": CHECKS}, metrics={"path": "/prom"})
    seen = 0
    for alert in export.alerts(settings):
        for selector in selectors(alert.expr):
            if selector.name.startswith(f"{NS}_http_request") and selector.name != f"{NS}_http_requests_in_progress":
                op, pattern = matchers(selector)["endpoint"]
                assert op == "!~"
                for path in ("/healthz", "/healthz/ready", "/healthz/detailed", "/livez", "/readyz", "/prom"):
                    assert re.fullmatch(pattern, path), (alert.name, path)
                assert not re.fullmatch(pattern, "/items/{id}") and not re.fullmatch(pattern, "/health")
                seen += 1
    assert seen >= 8


@pytest.mark.parametrize("job", ["", "ops-center"])
def test_the_job_and_matchers_are_in_every_selector(job: str) -> None:
    settings = make_settings({"job": job, "matchers": {"namespace": "prod", "cluster": "eu-1"}})
    for group in export.rule_groups(settings):
        for rule in group.rules:
            for selector in selectors(rule.expr):
                found = matchers(selector)
                assert found["namespace"] == ("=", "prod") and found["cluster"] == ("=", "eu-1"), _name(rule)
                if job:
                    assert found["job"] == ("=", "ops-center"), _name(rule)
                else:
                    assert "job" not in found
                    if not selector.name.startswith(NS):
                        # `up`, `process_*`: without a job, our targets are the ones exposing build_info.
                        assert "and on (job, instance)" in rule.expr and f"{NS}_build_info" in rule.expr, _name(rule)


def test_aggregations_keep_the_job_and_matcher_labels_for_routing() -> None:
    settings = make_settings({"matchers": {"namespace": "prod"}})
    alert = by_name(settings)["HighAPIErrorRate"]
    assert "sum by (job, namespace) (rate(" in alert.expr


# -- overrides and disabled alerts ------------------------------------------------------------------


def test_per_rule_overrides() -> None:
    settings = make_settings(
        {
            "rules": {
                "HighAPIErrorRate": {"threshold": 0.02, "for": "10m", "severity": "critical", "labels": {"team": "payments"}},
                "LowUserRegistrations": {"enabled": False},
            },
            "disabled": ["WebhookDeliveryFailures"],
        }
    )  # fmt: skip
    alerts = by_name(settings)
    high = alerts["HighAPIErrorRate"]
    assert (high.threshold, high.for_, high.severity, dict(high.labels)) == (
        0.02,
        "10m",
        "critical",
        {"team": "payments"},
    )
    assert 0.02 in numbers(high.expr) and 0.01 not in numbers(high.expr)
    assert "2%" in high.summary
    assert not alerts["LowUserRegistrations"].enabled
    assert alerts["LowUserRegistrations"].disabled_reason == "alerts.rules.LowUserRegistrations.enabled is false"
    assert alerts["WebhookDeliveryFailures"].disabled_reason == "listed in alerts.disabled"
    exported = yaml.safe_load(export.render(settings))
    rules = {rule["alert"]: rule for group in exported["groups"] for rule in group["rules"] if "alert" in rule}
    assert "LowUserRegistrations" not in rules and "WebhookDeliveryFailures" not in rules
    assert rules["HighAPIErrorRate"]["labels"] == {"severity": "critical", "team": "payments"}
    assert rules["HighAPIErrorRate"]["for"] == "10m"


def test_a_pack_left_out_is_not_exported() -> None:
    settings = make_settings({"packs": ["api", "slo"]})
    assert {alert.pack for alert in export.alerts(settings)} == {"api", "slo"}


def test_down_alerts_read_the_configured_checks() -> None:
    alerts = by_name(make_settings())
    for name, check in (("RedisDown", "cache"), ("PostgreSQLDown", "db"), ("KeycloakDown", "keycloak"),
                        ("LiteLLMProxyDown", "litellm")):  # fmt: skip
        (selector,) = selectors(alerts[name].expr)
        assert selector.name == f"{NS}_health_check_status"
        assert matchers(selector)["check"] == ("=", check)
        assert alerts[name].expr.endswith(" == 0") and alerts[name].severity == "critical"


def test_down_alerts_without_a_check_are_listed_disabled_with_the_reason() -> None:
    alerts = by_name(make_settings(checks={}))
    for name in ("RedisDown", "PostgreSQLDown", "KeycloakDown", "LiteLLMProxyDown"):
        assert not alerts[name].enabled
        assert (
            "health.checks" in alerts[name].disabled_reason
            and f"alerts.rules.{name}.check" in alerts[name].disabled_reason
        )
    for name in ("HealthCheckFailing", "HealthCheckDegraded", "HealthCheckSlow", "HealthChecksNotReporting"):
        assert alerts[name].disabled_reason == "no health checks are configured (health.checks)"
    assert "RedisDown" not in export.render(make_settings(checks={}))


def test_a_check_override_and_several_checks_of_one_plugin() -> None:
    checks = {**CHECKS, "sessions": {"plugin": "redis", "url": "redis://127.0.0.1:6380/0"}, "idp": CHECKS["keycloak"]}
    alerts = by_name(make_settings({"rules": {"KeycloakDown": {"check": "idp"}}}, checks=checks))
    (redis,) = selectors(alerts["RedisDown"].expr)
    op, pattern = matchers(redis)["check"]
    assert op == "=~" and {c for c in checks if re.fullmatch(pattern, c)} == {"cache", "sessions"}
    (keycloak,) = selectors(alerts["KeycloakDown"].expr)
    assert matchers(keycloak)["check"] == ("=", "idp")


def test_alerts_on_signals_the_service_lacks_are_disabled_with_the_reason() -> None:
    alerts = by_name(make_settings(metrics={"id_labels": "drop"}, middleware=["correlation", "metrics"]))
    for name in ("LowCreditBalance", "CriticalCreditBalance", "SuspiciousAPIKeyUsage"):
        assert not alerts[name].enabled and "metrics.id_labels is 'drop'" in alerts[name].disabled_reason
    assert alerts["TracingSpansDropped"].disabled_reason.startswith("tracing is off")
    assert alerts["MultiprocessDirectoryGrowing"].disabled_reason.startswith("single process")

    alerts = by_name(make_settings(metrics={"multiprocess_dir": "/tmp/prom"}, tracing={"enabled": True}))
    assert alerts["MultiprocessDirectoryGrowing"].enabled and alerts["TracingSpansDropped"].enabled


def test_enabled_true_wins_over_a_packs_reason() -> None:
    settings = make_settings({"rules": {"MultiprocessDirectoryGrowing": {"enabled": True}}})
    alert = by_name(settings)["MultiprocessDirectoryGrowing"]
    assert alert.enabled and alert.disabled_reason == ""
    assert "MultiprocessDirectoryGrowing" in export.render(settings)


def test_runbook_base_is_configurable() -> None:
    alert = by_name(make_settings({"runbook_base": "https://wiki.example/runbooks"}))["RedisDown"]
    assert alert.runbook_url == "https://wiki.example/runbooks#redisdown"


# -- the slo pack ----------------------------------------------------------------------------------


def test_slo_recording_rules_have_the_agreed_names_and_labels() -> None:
    (group,) = [g for g in export.rule_groups(make_settings()) if g.name == "ops_observe.slo"]
    recorded = [(rule.record, rule.labels["slo"]) for rule in group.rules if isinstance(rule, Recording)]
    expected = [
        *((f"{NS}:slo_errors:ratio_rate{w}", kind) for kind in ("availability", "latency")
          for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")),
    ]  # fmt: skip
    for kind in ("availability", "latency"):
        expected += [(f"{NS}:slo_error_budget:remaining", kind), (f"{NS}:slo_objective:ratio", kind)]
    assert sorted(recorded) == sorted(expected)
    first_alert = next(i for i, rule in enumerate(group.rules) if isinstance(rule, Alert))
    assert all(isinstance(rule, Recording) for rule in group.rules[:first_alert]), "recorded before they are read"


def test_burn_rate_alerts_follow_the_workbook() -> None:
    alerts = by_name(make_settings({"slo": {"availability": 0.995}}))
    table = {"1h": ("5m", 14.4, "critical"), "6h": ("30m", 6, "critical"), "1d": ("2h", 3, "warning"),
             "3d": ("6h", 1, "warning")}  # fmt: skip
    for long, (short, rate, severity) in table.items():
        alert = alerts[f"AvailabilityBurnRate{long}"]
        names = {s.name for s in selectors(alert.expr)}
        assert names == {f"{NS}:slo_errors:ratio_rate{long}", f"{NS}:slo_errors:ratio_rate{short}"}
        assert {rate, 0.995} <= numbers(alert.expr)
        assert (alert.threshold, alert.severity) == (rate, severity)
        latency = alerts[f"LatencyBurnRate{long}"]
        assert {matchers(s)["slo"] for s in selectors(latency.expr)} == {("=", "latency")}


def test_per_route_slos_group_by_endpoint() -> None:
    settings = make_settings({"slo": {"routes": ["/items/{id}", "/checkout"], "latency_threshold": 1.0}})
    (group,) = [g for g in export.rule_groups(settings) if g.name == "ops_observe.slo"]
    rate5m = [r for r in group.rules if isinstance(r, Recording) and r.record.endswith("ratio_rate5m")]
    for rule in rate5m:
        assert "by (job, endpoint)" in rule.expr
        for selector in selectors(rule.expr):
            op, pattern = matchers(selector)["endpoint"]
            assert op == "=~" and re.fullmatch(pattern, "/items/{id}") and re.fullmatch(pattern, "/checkout")
            assert not re.fullmatch(pattern, "/items/7")
    latency = next(r for r in rate5m if r.labels["slo"] == "latency")
    (bucket,) = [s for s in selectors(latency.expr) if s.name.endswith("_bucket")]
    op, pattern = matchers(bucket)["le"]
    # prometheus-client writes le="1.0", Prometheus 3 stores le="1": both are the bucket.
    assert (
        op == "=~" and re.fullmatch(pattern, "1.0") and re.fullmatch(pattern, "1") and not re.fullmatch(pattern, "10")
    )


# -- formats -----------------------------------------------------------------------------------------


def test_the_rule_file_is_the_groups_as_yaml() -> None:
    settings = make_settings({"disabled": ["RedisDown"]})
    exported = yaml.safe_load(export.render(settings))
    assert exported == {"groups": [g.to_prometheus() for g in export.rule_groups(settings)]}
    names = {rule.get("alert") for group in exported["groups"] for rule in group["rules"]}
    assert "RedisDown" not in names and "PostgreSQLDown" in names


def test_the_operator_format_is_a_prometheus_rule_resource() -> None:
    settings = make_settings()
    resource = yaml.safe_load(export.render(settings, "operator"))
    assert resource["apiVersion"] == "monitoring.coreos.com/v1" and resource["kind"] == "PrometheusRule"
    assert resource["metadata"] == {
        "name": "ops-center-rules",
        "labels": {"app.kubernetes.io/name": "ops-center", "app.kubernetes.io/managed-by": "ops-observe"},
    }
    assert resource["spec"] == yaml.safe_load(export.render(settings))


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'json'"):
        export.render(make_settings(), "json")  # type: ignore[arg-type]


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(_text, _data, max_size=5))
def test_the_yaml_writer_round_trips_any_plain_data(data: dict[str, Any]) -> None:
    assert yaml.safe_load(export.to_yaml(data)) == data


# -- third-party packs ---------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for fake distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.find.cache_clear()
    yield tmp_path
    plugins.find.cache_clear()


def add_pack(site: Path, dist: str, name: str, source: str) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ops_observe.alert_packs]\n{name} = {dist}_pack:pack\n")
    (site / f"{dist}_pack.py").write_text(textwrap.dedent(source))


ACME = """
    from ops_observe.alerts.context import AlertContext


    def pack(ctx: AlertContext):
        a = ctx.pack("acme")
        return [a.group(a.alert(
            "AcmeQueueBacklog", f"sum by ({ctx.by}) ({ctx.metric('acme_queue_depth')}) > $threshold",
            threshold=500, for_="10m", severity="warning", summary="Backlog above $threshold.",
            description="{{ $labels.job }} has {{ $value }} jobs queued.",
        ))]
"""


def test_a_third_party_pack_is_found_enabled_and_overridden_like_ours(site: Path) -> None:
    add_pack(site, "acme_alerts", "acme", ACME)
    settings = make_settings(
        {
            "packs": ["api", "acme"],
            "job": "svc",
            "rules": {"AcmeQueueBacklog": {"threshold": 50, "severity": "critical"}},
        }
    )
    alert = by_name(settings)["AcmeQueueBacklog"]
    assert (alert.pack, alert.threshold, alert.severity) == ("acme", 50, "critical")
    assert alert.expr == 'sum by (job) (ops_center_acme_queue_depth{job="svc"}) > 50'
    assert alert.runbook_url.endswith("#acmequeuebacklog")
    assert [g.name for g in export.rule_groups(settings)] == ["ops_observe.api", "ops_observe.acme"]


def test_a_pack_that_returns_no_groups_is_a_plugin_error(site: Path) -> None:
    add_pack(site, "bad_alerts", "bad", "def pack(ctx):\n    return 'groups'\n")
    with pytest.raises(PluginError, match="alert pack 'bad' returned 'groups', not rule groups"):
        export.alerts(make_settings({"packs": ["bad"]}))


def test_an_alert_defined_by_two_packs_is_refused_naming_both(site: Path) -> None:
    add_pack(site, "copy_alerts", "copy", ACME.replace('"acme"', '"copy"'))
    add_pack(site, "acme_alerts", "acme", ACME)
    with pytest.raises(PluginError, match="'AcmeQueueBacklog' is defined twice, by pack 'acme' and by pack 'copy'"):
        export.alerts(make_settings({"packs": ["acme", "copy"]}))


def test_a_threshold_a_hand_built_alert_cannot_take_is_refused(site: Path) -> None:
    source = """
        from ops_observe.alerts.rules import Alert, RuleGroup

        def pack(ctx):
            alert = Alert("HandBuilt", "hand", "up == 0", "warning", "s", "d {{ $labels.job }} {{ $value }}", "u")
            return [RuleGroup("ops_observe.hand", (alert,))]
    """
    add_pack(site, "hand_alerts", "hand", source)
    with pytest.raises(SettingsError) as info:
        export.alerts(make_settings({"packs": ["hand"], "rules": {"HandBuilt": {"threshold": 2}}}))
    assert info.value.key == "alerts.rules.HandBuilt.threshold"
    alert = by_name(make_settings({"packs": ["hand"], "rules": {"HandBuilt": {"for": "1m", "labels": {"a": "b"}}}}))
    assert (alert["HandBuilt"].for_, dict(alert["HandBuilt"].labels)) == ("1m", {"a": "b"})


# -- helpers ---------------------------------------------------------------------------------------


def _name(rule: Alert | Recording) -> str:
    return rule.name if isinstance(rule, Alert) else rule.record


def _subtree(node: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    yield from nodes(node.prettify())


def _unparen(node: Any) -> Any:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node
