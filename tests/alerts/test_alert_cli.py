"""``ops-observe alerts export`` and ``ops-observe alerts list``."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops_observe.cli import main

DEMO = str(Path(__file__).resolve().parents[2] / "ops_observe" / "demo.toml")

TYPO = """
[ops_observe]
service_name = "ops-center"

[ops_observe.alerts.rules.HighAPIErorRate]
threshold = 0.02
"""


def test_export_writes_the_rule_file_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "export", "--settings", DEMO]) == 0
    out = capsys.readouterr().out
    groups = yaml.safe_load(out)["groups"]
    assert groups[0]["name"] == "ops_observe.api"
    assert any(rule.get("alert") == "RedisDown" for group in groups for rule in group["rules"])


def test_export_to_a_file_that_promtool_accepts(
    tmp_path: Path, promtool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules" / "ops-center.yml"
    path.parent.mkdir()
    path.write_text("stale")
    assert main(["alerts", "export", "--settings", DEMO, "-o", str(path)]) == 0
    assert capsys.readouterr().out == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by a Prometheus running as another user
    assert [p.name for p in path.parent.iterdir()] == ["ops-center.yml"]  # no temporary file left
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_as_a_prometheus_rule_resource(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "export", "--settings", DEMO, "--format", "operator"]) == 0
    resource = yaml.safe_load(capsys.readouterr().out)
    assert (resource["apiVersion"], resource["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert resource["metadata"]["name"] == "ops-center-rules"
    assert resource["spec"]["groups"][0]["name"] == "ops_observe.api"


def test_list_prints_every_alert_with_its_pack_severity_threshold_for_and_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["alerts", "list", "--settings", DEMO]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "pack", "severity", "threshold", "for", "enabled"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert len(rows) >= 50
    assert rows["HighAPIErrorRate"].split() == ["HighAPIErrorRate", "api", "warning", "0.01", "5m", "yes"]
    assert rows["HighMemoryUsage"].split()[3] == "2147483648"
    assert rows["RedisDown"].split()[2:] == ["critical", "-", "2m", "yes"]
    assert rows["KeycloakDown"].split()[5] == "no"
    assert "no health check whose name is 'keycloak' in health.checks" in rows["KeycloakDown"]


@pytest.mark.parametrize("command", ["export", "list"])
def test_bad_alert_settings_exit_2_with_the_error_on_stderr(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ops_observe.toml"
    path.write_text(TYPO)
    assert main(["alerts", command, "--settings", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"ops-observe: {path}: alerts.rules.HighAPIErorRate: no alert named 'HighAPIErorRate' in the enabled "
        "packs; did you mean 'HighAPIErrorRate'?\n"
    )


def test_a_settings_file_the_loader_refuses_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ops_observe.toml"
    path.write_text('[ops_observe.alerts]\npacks = ["api"]\njobs = "x"\n')
    assert main(["alerts", "export", "--settings", str(path)]) == 2
    assert "alerts.jobs: unknown key 'jobs'; did you mean 'job'?" in capsys.readouterr().err


def test_an_unknown_format_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["alerts", "export", "--format", "json"])
    assert info.value.code == 2
    assert "invalid choice: 'json'" in capsys.readouterr().err


def test_the_readme_demo_command_runs() -> None:
    """``ops-observe alerts export --settings ops_observe/demo.toml``, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "ops_observe", "alerts", "export", "--settings", DEMO],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["groups"]
