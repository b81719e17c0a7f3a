"""``promtool check rules`` on the export of every pack, at the defaults and at customised settings.

The operator format's ``spec`` is the same rule file, checked the same way. ``promtool test
rules`` (does each alert fire when it should) is ``test_rule_units.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerts_support import make_settings

from ops_observe.alerts import export
from ops_observe.alerts.settings import PACKS
from ops_observe.settings import Settings, load_settings

DEMO = Path(__file__).resolve().parents[2] / "ops_observe" / "demo.toml"

CUSTOM: dict[str, Any] = {
    "job": "ops-center",
    "matchers": {"namespace": "prod", "cluster": "eu-1"},
    "runbook_base": "https://wiki.example/runbooks",
    "disabled": ["LowUserRegistrations", "HighClientDisconnectRate"],
    "rules": {
        "HighAPIErrorRate": {"threshold": 0.02, "for": "10m", "severity": "critical", "labels": {"team": "payments"}},
        "RedisDown": {"check": "cache", "for": "30s"},
        "LowActiveUsers": {"enabled": False},
        "MultiprocessDirectoryGrowing": {"enabled": True},
        "AvailabilityBurnRate1h": {"threshold": 10, "labels": {"page": "yes"}},
    },
    "slo": {"availability": 0.995, "latency_target": 0.95, "latency_threshold": 1.0, "routes": ["/items/{id}", "/"]},
}

VARIANTS = {
    "defaults": lambda: make_settings(),
    "demo": lambda: load_settings(DEMO),
    "custom": lambda: make_settings(CUSTOM, metrics={"id_labels": "drop", "buckets": [0.1, 1.0, 5.0]}),
    "no checks, no tracing": lambda: make_settings({"job": "x"}, checks={}, middleware=["metrics"]),
    **{f"only {pack}": (lambda pack=pack: make_settings({"packs": [pack]})) for pack in PACKS},
}


def check_rules(promtool: str, path: Path) -> str:
    """``promtool check rules`` with every lint, fatal; returns its output."""
    result = subprocess.run(
        [promtool, "check", "rules", "--lint=all", "--lint-fatal", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def enabled_rules(settings: Settings) -> int:
    return sum(1 for g in export.rule_groups(settings) for r in g.rules if getattr(r, "enabled", True))


@pytest.mark.parametrize("variant", VARIANTS)
def test_promtool_accepts_the_export(variant: str, promtool: str, tmp_path: Path) -> None:
    settings = VARIANTS[variant]()
    path = tmp_path / "rules.yml"
    path.write_text(export.render(settings))
    output = check_rules(promtool, path)
    assert f"SUCCESS: {enabled_rules(settings)} rules found" in output


def test_promtool_accepts_the_operator_resources_spec(promtool: str, tmp_path: Path) -> None:
    settings = make_settings(CUSTOM)
    resource = yaml.safe_load(export.render(settings, "operator"))
    assert resource["kind"] == "PrometheusRule"
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(resource["spec"]))
    output = check_rules(promtool, path)
    assert f"SUCCESS: {enabled_rules(settings)} rules found" in output


def test_promtool_rejects_a_broken_rule_file(promtool: str, tmp_path: Path) -> None:
    """The check above would catch a bad expression: promtool is not a rubber stamp."""
    path = tmp_path / "rules.yml"
    path.write_text(
        export.render(make_settings({"packs": ["api"]})).replace("sum by (job) (rate(", "sum by (job (rate(", 1)
    )
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
