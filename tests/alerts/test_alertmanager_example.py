"""docs/alertmanager.yml: valid for amtool, routes by severity, and its inhibitions fit the alerts they name.

An inhibition silences a warning while its critical twin fires with the same values of the
``equal`` labels. It only works when both alerts carry exactly those labels: a label only one
of them has never matches, and a label both have but ``equal`` lacks lets one user's critical
alert hide another user's warning. The labels each alert carries come from its expression,
through the PromQL parser (:func:`ops_observe.alerts.promql.result_labels`), and a real
Alertmanager loaded with the example shows the warning suppressed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import catalog_support
import httpx
import pytest
import yaml
from catalog_support import CUSTOMISED, WITH_CHECKS
from stack import Process, binary, poll, wait_until_ready

from ops_observe.alerts.export import alerts, rule_groups
from ops_observe.alerts.promql import result_labels
from ops_observe.alerts.rules import SEVERITIES, Alert
from ops_observe.settings import load_settings

from services import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "alertmanager.yml"
RECEIVERS = {"critical": "pagerduty", "warning": "slack", "info": "email"}


def _config() -> dict[str, Any]:
    loaded = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _names(matchers: list[str], known: list[str]) -> list[str]:
    """The alert names an inhibition's ``alertname`` matcher selects."""
    (matcher,) = [m for m in matchers if m.startswith("alertname")]
    op, value = re.fullmatch(r'alertname(=~|=)"(.*)"', matcher).groups()  # type: ignore[union-attr]
    return [n for n in known if (re.fullmatch(value, n) if op == "=~" else n == value)]


def test_amtool_accepts_it() -> None:
    result = subprocess.run([binary("amtool"), "check-config", str(EXAMPLE)], capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("severity", SEVERITIES)
def test_routes_by_severity(severity: str) -> None:
    result = subprocess.run(
        [binary("amtool"), "config", "routes", "test", f"--config.file={EXAMPLE}", f"severity={severity}",
         "alertname=HighAPIErrorRate", "job=ops-center"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == RECEIVERS[severity]


@pytest.mark.parametrize("data", [WITH_CHECKS, CUSTOMISED], ids=["defaults", "customised"])
def test_inhibitions_name_existing_twins_with_the_labels_both_carry(data: dict[str, Any]) -> None:
    settings = load_settings(data)
    groups = rule_groups(settings)
    by_name = {a.name: a for a in alerts(settings) if a.enabled}
    matchers = frozenset(settings.alerts.matchers)
    labels_of = catalog_support.labels_resolver(groups, matchers, multiprocess=data is CUSTOMISED)

    def carried(alert: Alert) -> frozenset[str]:
        # what the expression gives; the rule's own labels (severity, `labels` overrides) are not compared
        return result_labels(alert.expr, labels_of)

    rules = _config()["inhibit_rules"]
    assert len(rules) >= 3
    for rule in rules:
        sources = _names(rule["source_matchers"], list(by_name))
        targets = _names(rule["target_matchers"], list(by_name))
        assert sources and targets, f"{rule} names an alert that does not exist"
        # the keys of alerts.matchers are added to `equal` by the user, as the file says
        equal = set(rule["equal"]) | matchers
        for source in sources:
            for target in targets:
                s, t = by_name[source], by_name[target]
                if data is WITH_CHECKS:  # CUSTOMISED raises HighAPIErrorRate to critical
                    assert SEVERITIES.index(s.severity) < SEVERITIES.index(t.severity), (source, target)
                assert carried(s) == carried(t), (source, target, carried(s) ^ carried(t))
                assert carried(s) <= equal, (source, target, "equal lacks", carried(s) - equal)


def test_alertmanager_suppresses_a_warning_while_its_critical_twin_fires(tmp_path: Path) -> None:
    """The example's routes and inhibitions, loaded by a real Alertmanager (receivers on loopback)."""
    config = _config()
    closed = f"http://127.0.0.1:{free_port()}/"
    config["global"] = {"resolve_timeout": "5m"}
    config["receivers"] = [{"name": r["name"], "webhook_configs": [{"url": closed}]} for r in config["receivers"]]
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = Process(
        "alertmanager",
        [binary("prometheus-alertmanager"), f"--config.file={tmp_path / 'am.yml'}",
         f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        tmp_path / "alertmanager.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{base}/-/ready")
        shared = {"job": "ops-center", "instance": "10.0.0.1:8000", "user_id": "u1", "organization_id": "o1",
                  "tier": "pro"}  # fmt: skip
        posted = [
            {"alertname": "CriticalCreditBalance", "severity": "critical", **shared},
            {"alertname": "LowCreditBalance", "severity": "warning", **shared},
            {"alertname": "LowCreditBalance", "severity": "warning", **shared, "user_id": "u2"},
        ]
        httpx.post(f"{base}/api/v2/alerts", json=[{"labels": labels} for labels in posted], timeout=5)

        def states() -> dict[str, str] | None:
            found = httpx.get(f"{base}/api/v2/alerts", timeout=5).json()
            shown = {f"{a['labels']['alertname']}/{a['labels']['user_id']}": a["status"]["state"] for a in found}
            return shown if len(shown) == 3 and "suppressed" in shown.values() else None

        shown = poll(states, timeout=20, what="the three alerts, one suppressed", diagnostics=process.describe)
        assert shown == {
            "CriticalCreditBalance/u1": "active",
            "LowCreditBalance/u1": "suppressed",  # its critical twin fires for the same user
            "LowCreditBalance/u2": "active",  # another user's warning is not hidden
        }
    finally:
        process.stop()
