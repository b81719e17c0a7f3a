"""The README's alert and dashboard commands run as written (output files redirected into tmp_path)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ops_observe.cli import main

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[list[str]]:
    """The ``ops-observe ...`` lines of the README's "Alert rules and dashboards" bash block."""
    section = (ROOT / "README.md").read_text().split("## Alert rules and dashboards", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("ops-observe ")]


def redirected(argv: list[str], tmp_path: Path) -> list[str]:
    return [str(tmp_path / a) if i and argv[i - 1] in ("-o", "--output") else a for i, a in enumerate(argv)]


def test_the_readme_shows_export_list_check_and_dashboards() -> None:
    assert [argv[1:3] for argv in readme_commands()] == [
        ["alerts", "export"],
        ["alerts", "list"],
        ["alerts", "check"],
        ["dashboards", "export"],
    ]


def test_the_readme_export_writes_rules_promtool_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    export, listing = readme_commands()[:2]
    assert main(redirected(export, tmp_path)[1:]) == 0
    rules = tmp_path / "rules.yml"
    groups = yaml.safe_load(rules.read_text())["groups"]
    assert {g["name"] for g in groups} >= {"ops_observe.api", "ops_observe.slo"}
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by .ci/run"
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    capsys.readouterr()
    assert main(listing[1:]) == 0
    table = capsys.readouterr().out
    assert "RedisDown" in table and "PostgreSQLDown" in table  # the demo's checks drive the down rules


@pytest.mark.skipif(importlib.util.find_spec("grafana_foundation_sdk") is None, reason="the dashboards extra")
def test_the_readme_dashboard_export_writes_a_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    dashboards = readme_commands()[3]
    assert main(redirected(dashboards, tmp_path)[1:]) == 0
    model = json.loads((tmp_path / "dashboard.json").read_text())
    assert model["panels"]
