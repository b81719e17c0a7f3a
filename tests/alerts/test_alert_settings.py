"""The ``[ops_observe.alerts]`` section: what the loader checks, and what the export checks against the packs."""

from __future__ import annotations

from typing import Any

import pytest
from alerts_support import make_settings

from ops_observe.alerts import export
from ops_observe.alerts.settings import PACKS, AlertsSettings, RuleSettings
from ops_observe.errors import SettingsError
from ops_observe.settings import load_settings, to_dict
from ops_observe.settings_reference import render as settings_reference


def test_defaults_enable_all_eight_packs() -> None:
    section = load_settings({}).alerts
    assert isinstance(section, AlertsSettings)
    assert (
        section.packs
        == PACKS
        == ("api", "billing", "security", "infrastructure", "business", "runtime", "suite", "slo")
    )
    assert (section.job, dict(section.matchers), section.disabled, dict(section.rules)) == ("", {}, (), {})
    assert (section.slo.availability, section.slo.latency_target, section.slo.latency_threshold) == (0.999, 0.99, 0.5)
    assert section.slo.routes == ()


def test_the_agreed_shape_loads() -> None:
    settings = load_settings(
        {
            "alerts": {
                "packs": ["api", "slo"],
                "job": "ops-center",
                "matchers": {"namespace": "prod"},
                "runbook_base": "https://runbooks.example/alerts",
                "disabled": ["LowUserRegistrations"],
                "rules": {
                    "HighAPIErrorRate": {
                        "threshold": 0.02, "for": "10m", "severity": "critical", "labels": {"team": "payments"},
                        "enabled": False,
                    },
                    "RedisDown": {"check": "cache"},
                },
                "slo": {"availability": 0.995, "latency_target": 0.9, "latency_threshold": 1.0, "routes": ["/items/{id}"]},
            }
        }
    )  # fmt: skip
    section = settings.alerts
    assert section.rules["HighAPIErrorRate"] == RuleSettings(
        threshold=0.02, for_="10m", severity="critical", labels={"team": "payments"}, enabled=False
    )
    assert section.rules["RedisDown"].check == "cache"
    assert section.slo.routes == ("/items/{id}",)
    # `for` is a Python keyword: the field is `for_`, the key in files and in the shown settings is `for`.
    shown = to_dict(settings)["alerts"]["rules"]["HighAPIErrorRate"]
    assert shown["for"] == "10m" and "for_" not in shown


def test_the_settings_reference_names_the_for_key() -> None:
    text = settings_reference()
    assert "## `[ops_observe.alerts.rules.NAME]`" in text
    assert "| `for` |" in text and "`for_`" not in text
    assert "## `[ops_observe.alerts.slo]`" in text


@pytest.mark.parametrize(
    ("alerts", "key", "problem"),
    [
        ({"rules": {"X": {"fro": "5m"}}}, "alerts.rules.X.fro", "did you mean 'for'?"),
        ({"rules": {"X": {"for": "5 minutes"}}}, "alerts.rules.X.for", "must be a Prometheus duration"),
        ({"rules": {"X": {"severity": "page"}}}, "alerts.rules.X.severity", "expected one of 'critical', 'warning'"),
        ({"rules": {"X": {"threshold": "high"}}}, "alerts.rules.X.threshold", "expected a number"),
        ({"rules": {"X": {"labels": {"bad-label": "x"}}}}, "alerts.rules.X.labels", "must be a Prometheus name"),
        ({"matchers": {"__name__": "x"}}, "alerts.matchers", "reserved"),
        ({"packs": ["api", "api"]}, "alerts.packs", "listed twice"),
        ({"disabled": ["A", "A"]}, "alerts.disabled", "listed twice"),
        ({"slo": {"availability": 1.0}}, "alerts.slo.availability", "between 0 and 1"),
        ({"slo": {"latency_target": 0}}, "alerts.slo.latency_target", "between 0 and 1"),
        ({"slo": {"latency_threshold": -1}}, "alerts.slo.latency_threshold", "greater than 0"),
        ({"slo": {"routes": ["items"]}}, "alerts.slo.routes", "not a route template"),
        ({"slo": {"objective": 0.9}}, "alerts.slo.objective", "unknown key"),
        ({"pack": ["api"]}, "alerts.pack", "did you mean 'packs'?"),
    ],
)
def test_bad_values_are_refused_when_the_settings_load(alerts: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"alerts": alerts})
    assert info.value.key == key
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("alerts", "key", "problem"),
    [
        ({"packs": ["api", "bilIing"]}, "alerts.packs[1]", "no alert pack named 'bilIing' is installed; did you mean 'billing'?"),
        ({"rules": {"HighAPIErorRate": {"threshold": 0.02}}}, "alerts.rules.HighAPIErorRate",
         "no alert named 'HighAPIErorRate' in the enabled packs; did you mean 'HighAPIErrorRate'?"),
        ({"disabled": ["RedisDown", "LowUserRegistration"]}, "alerts.disabled[1]", "did you mean 'LowUserRegistrations'?"),
        # A rule of a pack that is not enabled is unknown too: its override would do nothing.
        ({"packs": ["api"], "rules": {"RedisDown": {"for": "1m"}}}, "alerts.rules.RedisDown", "in the enabled packs"),
        ({"rules": {"RedisDown": {"check": "cahce"}}}, "alerts.rules.RedisDown.check",
         "no health check named 'cahce' in health.checks; did you mean 'cache'?"),
        ({"rules": {"RedisDown": {"threshold": 1}}}, "alerts.rules.RedisDown.threshold", "has no threshold to override"),
        ({"slo": {"latency_threshold": 0.3}}, "alerts.slo.latency_threshold",
         "0.3 is not a bound of the latency histogram (metrics.buckets: 0.005, 0.01"),
    ],
)  # fmt: skip
def test_names_the_packs_do_not_know_are_refused_before_any_export(
    alerts: dict[str, Any], key: str, problem: str
) -> None:
    settings = make_settings(alerts)
    for call in (export.validate, export.alert_context, export.rule_groups, export.alerts, export.render):
        with pytest.raises(SettingsError) as info:
            call(settings)
        assert info.value.key == key
        assert problem in str(info.value)
        assert str(info.value).startswith("<dict>: " + key + ": ")


def test_a_latency_threshold_on_a_custom_bucket_is_accepted() -> None:
    settings = make_settings({"slo": {"latency_threshold": 0.3}}, metrics={"buckets": [0.1, 0.3, 1.0]})
    context = export.alert_context(settings)
    assert context.latency_buckets == (0.1, 0.3, 1.0)
    assert context.slo.latency_threshold == 0.3
