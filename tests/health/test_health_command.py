"""``ops-observe check``: the table, the JSON, the exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops_observe import SettingsError
from ops_observe.health.command import check_command
from ops_observe.settings import load_settings

OK = {"plugin": "memory", "max_rss_mb": 1_000_000}
BAD = {"plugin": "tcp", "host": "127.0.0.1", "port": 1}


def run(checks: dict[str, Any], *, as_json: bool) -> tuple[int, str]:
    out = io.StringIO()
    settings = load_settings({"service_name": "billing", "health": {"timeout": 2, "checks": checks}})
    return check_command(settings, as_json=as_json, out=out), out.getvalue()


@pytest.mark.parametrize(
    ("checks", "code", "status"),
    [
        ({"ok": OK}, 0, "pass"),
        ({"ok": OK, "bad": BAD}, 1, "fail"),
        ({"ok": OK, "bad": {**BAD, "critical": False}}, 0, "pass"),
        ({}, 0, "pass"),
    ],
)
def test_exit_status_follows_the_critical_checks(checks: dict[str, Any], code: int, status: str) -> None:
    exit_code, text = run(checks, as_json=True)
    assert exit_code == code
    doc = json.loads(text)
    assert doc["status"] == status and doc["service"] == "billing"
    assert list(doc["checks"]) == list(checks)  # non-critical checks are run and shown too


def test_table() -> None:
    exit_code, text = run({"ok": OK, "bad": BAD}, as_json=False)
    lines = text.splitlines()
    assert exit_code == 1
    assert lines[0].split() == ["CHECK", "PLUGIN", "CRITICAL", "STATUS", "MS", "ERROR"]
    assert lines[1].split()[:4] == ["ok", "memory", "yes", "pass"]
    assert lines[2].split()[:4] == ["bad", "tcp", "yes", "fail"]
    assert "cannot connect to 127.0.0.1:1" in lines[2]
    assert lines[-1] == "billing: fail"


def test_no_checks_says_so() -> None:
    assert run({}, as_json=False) == (
        0,
        "no checks configured ([ops_observe.health.checks] is empty)\nbilling: pass\n",
    )


def test_bad_check_settings_raise_settings_error() -> None:
    with pytest.raises(SettingsError, match="has no option 'prot'"):
        run({"x": {**BAD, "prot": 1}}, as_json=False)


def test_the_cli_runs_it(tmp_path: Path) -> None:
    settings = tmp_path / "ops_observe.toml"
    settings.write_text(
        '[ops_observe]\n[ops_observe.health.checks.bad]\nplugin = "tcp"\nhost = "127.0.0.1"\nport = 1\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "ops_observe.cli", "check", "--settings", str(settings), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["checks"]["bad"]["status"] == "fail"
