"""``promtool test rules`` for every alert of every pack: it fires when it should, with its labels
and annotations, and stays silent before its ``for`` and on a healthy or just-under series.

The cases are tables in ``unit_cases.py``; their input series come from a real wrapped app's
``/metrics`` (``exposition.py``). Each pack's cases run as one promtool test file, against the
rule file ``ops-observe alerts export`` writes for that service with ``packs = [<pack>]``; one
customised run checks that the settings' overrides reach the rules. An alert without a case
fails the tests.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from exposition import service_settings
from unit_cases import CASES, CUSTOM_ALERTS, CUSTOM_TARGET, TARGET, Case, Inputs, custom

from ops_observe.alerts.export import alerts, render
from ops_observe.alerts.rules import Alert
from ops_observe.alerts.settings import PACKS
from ops_observe.root import Settings
from ops_observe.settings import load_settings


def rule_settings(tmp_path: Path, section: Mapping[str, Any] | None = None) -> Settings:
    """The test service's settings, ``[ops_observe.alerts]`` = ``section``, as deployed with several
    workers (so that every alert of every pack is exported)."""
    return load_settings(service_settings(section, multiprocess_dir=str(tmp_path / "multiprocess")))


def test_every_alert_has_a_case(tmp_path: Path) -> None:
    """A new alert without a case (or a case of a removed alert) fails here, naming it."""
    names = {alert.name for alert in alerts(rule_settings(tmp_path))}
    covered = {case.alert for cases in CASES.values() for case in cases()}
    assert sorted(names - covered) == [], "alerts without a promtool case in unit_cases.py"
    assert sorted(covered - names) == [], "cases of alerts that do not exist"


@pytest.mark.parametrize("pack", PACKS)
def test_pack_alerts_fire_and_stay_silent(pack: str, promtool: str, tmp_path: Path) -> None:
    """Every alert of ``pack`` fires at its minute with its labels and annotations, and not before;
    its healthy or just-under series keep it silent."""
    settings = rule_settings(tmp_path, {"packs": [pack]})  # the pack's own export: promtool evaluates only it
    by_name = {alert.name: alert for alert in alerts(settings)}
    cases = CASES[pack]()
    assert {case.alert for case in cases} == set(by_name), "every alert of the pack has its case here"
    assert [name for name, alert in by_name.items() if not alert.enabled] == [], "the test service has every signal"
    run_promtool(promtool, tmp_path, settings, cases, TARGET)


def test_overrides_reach_the_rules(promtool: str, tmp_path: Path) -> None:
    """A job matcher, a namespace matcher, thresholds, ``for``, severities, extra labels, a runbook
    base and a per-route SLO, set in settings, are what the exported rules fire on and carry."""
    settings = rule_settings(tmp_path, CUSTOM_ALERTS)
    by_name = {alert.name: alert for alert in alerts(settings)}
    assert "2%" in by_name["HighAPIErrorRate"].summary, "the overridden threshold is the one the summary shows"
    run_promtool(promtool, tmp_path, settings, custom(), CUSTOM_TARGET)


# -- the promtool run ---------------------------------------------------------------------------


def run_promtool(
    promtool: str, tmp_path: Path, settings: Settings, cases: tuple[Case, ...], target: Mapping[str, str]
) -> None:
    """Write the exported rule file and one test file for ``cases``, run ``promtool test rules``."""
    by_name = {alert.name: alert for alert in alerts(settings)}
    (tmp_path / "rules.yaml").write_text(render(settings))
    base = settings.alerts.runbook_base
    tests = [test for case in cases for test in promtool_tests(case, by_name[case.alert], target, base)]
    document = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(document, sort_keys=False, width=200))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}\n{result.stderr}"


def promtool_tests(case: Case, alert: Alert, target: Mapping[str, str], runbook_base: str) -> list[dict[str, Any]]:
    """One case as promtool tests: the firing series (silent a minute before ``case.at``, firing at
    it), and each quiet set of series (silent at ``case.silent_at``)."""
    assert alert.severity == case.severity, f"{alert.name}: severity {alert.severity}, expected {case.severity}"
    labels = {"severity": case.severity, **case.labels}
    firing = {
        "exp_labels": labels,
        "exp_annotations": {
            "summary": render_template(alert.summary, labels, case.value),
            "description": render_template(alert.description, labels, case.value),
            "runbook_url": f"{runbook_base}#{alert.name.lower()}",
        },
    }

    def check(minute: int, *exp_alerts: dict[str, Any]) -> dict[str, Any]:
        return {"eval_time": f"{minute}m", "alertname": alert.name, "exp_alerts": list(exp_alerts)}

    fire = {
        "name": f"{alert.name} fires at {case.at}m, not at {case.at - 1}m",
        "interval": "1m",
        "input_series": input_series(case.fire, target),
        "alert_rule_test": [check(case.at - 1), check(case.at, firing)],
    }
    quiet = [
        {
            "name": f"{alert.name} stays silent on healthy series ({index})",
            "interval": "1m",
            "input_series": input_series(inputs, target),
            "alert_rule_test": [check(minute) for minute in case.silent_at],
        }
        for index, inputs in enumerate((case.quiet, *case.quiet_also), 1)
    ]
    return [fire, *quiet]


def input_series(inputs: Inputs, target: Mapping[str, str]) -> list[dict[str, str]]:
    """promtool's ``input_series``: each series as scraped (``target``'s labels, unless it sets its own)."""
    return [
        {"series": str(series.target(**{k: v for k, v in target.items() if k not in series.labels})), "values": values}
        for series, values in inputs
    ]


# -- annotation templates, as Prometheus renders them --------------------------------------------

_ACTION = re.compile(r"{{\s*(.*?)\s*}}")
_IF_LABEL = re.compile(r"{{ if \$labels\.(\w+) }}(.*?)(?:{{ else }}(.*?))?{{ end }}", re.S)
_LABEL = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
_PIPE = re.compile(r"\$value\s*\|\s*(\w+)")


def render_template(template: str, labels: Mapping[str, str], value: float) -> str:
    """``template`` rendered with the alert's labels and value, for the template forms the packs use.

    ``{{ if $labels.x }}`` tests whether the alert has the label; reading one it lacks outside such
    a test is an error (Prometheus would render it empty: a label the expression lost). A form
    not handled here is an error too, so that a new one is added here rather than skipped.
    """

    def branch(match: re.Match[str]) -> str:
        return match.group(2) if labels.get(match.group(1)) else match.group(3) or ""

    def action(match: re.Match[str]) -> str:
        text = match.group(1)
        if label := _LABEL.fullmatch(text):
            if label.group(1) not in labels:
                raise ValueError(f"{template!r} reads label {label.group(1)!r}, which the alert does not carry")
            return labels[label.group(1)]
        if (pipe := _PIPE.fullmatch(text)) and pipe.group(1) in HUMANIZE:
            return HUMANIZE[pipe.group(1)](value)
        raise ValueError(f"the alert tests cannot render {{{{ {text} }}}}: add it to render_template()")

    return _ACTION.sub(action, _IF_LABEL.sub(branch, template))


def _humanize(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    prefix = ""
    if abs(value) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = p, value * 1000
    return f"{value:.4g}{prefix}"


def _humanize1024(value: float) -> str:
    if abs(value) <= 1 or math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(value) < 1024:
            break
        prefix, value = p, value / 1024
    return f"{value:.4g}{prefix}"


def _humanize_duration(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    if value == 0:
        return f"{value:.4g}s"
    if abs(value) >= 1:
        sign, value = ("-", -value) if value < 0 else ("", value)
        whole = int(value)
        days, hours, minutes, seconds = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{value:.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{value:.4g}{prefix}s"


def _humanize_percentage(value: float) -> str:
    return f"{value * 100:.4g}%"


HUMANIZE: dict[str, Callable[[float], str]] = {
    "humanize": _humanize,
    "humanize1024": _humanize1024,
    "humanizeDuration": _humanize_duration,
    "humanizePercentage": _humanize_percentage,
}
"""Prometheus's template functions of a number (``template/template.go``)."""
