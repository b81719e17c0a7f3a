"""One validation step for every entry point: `settings`, `check`, `serve`, `plugins` and `wrap()`.

Each bad file names a plugin or an option that does not exist; every entry point refuses it the
same way, before anything starts: exit status 2 (a SettingsError for `wrap()`), the key named, and
"did you mean" where a close name is installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ops_observe
from ops_observe import plugins
from ops_observe.alerts.export import UNKNOWN_PACK, UNKNOWN_RULE
from ops_observe.cli import main
from ops_observe.health.runner import REJECTED, UNKNOWN_OPTION
from ops_observe.settings import load_settings, validate
from ops_observe.types import Receive, Scope, Send

from services import need

COMMANDS = ["settings", "check", "serve", "plugins"]

# (file text, key, problem): the cases of issue 11, point 7.
BAD_FILES = {
    "middleware": (
        '[ops_observe]\nmiddleware = ["correlation", "metrcs"]\n',
        "middleware[1]",
        plugins.NOT_INSTALLED.format(group=plugins.MIDDLEWARE, name="metrcs", hint="; did you mean 'metrics'?"),
    ),
    "check plugin": (
        '[ops_observe.health.checks.db]\nplugin = "postgress"\ndsn = "postgresql://app@db/app"\n',
        "health.checks.db.plugin",
        plugins.NOT_INSTALLED.format(group=plugins.HEALTH_CHECKS, name="postgress", hint="; did you mean 'postgres'?"),
    ),
    "postgres without dsn": (
        '[ops_observe.health.checks.db]\nplugin = "postgres"\n',
        "health.checks.db",
        REJECTED.format(check="db", plugin="postgres", error="give a dsn, a pool, or both"),
    ),
    "check option": (
        '[ops_observe.health.checks.db]\nplugin = "postgres"\ndsn = "postgresql://app@db/app"\nquerry = "SELECT 2"\n',
        "health.checks.db.querry",
        UNKNOWN_OPTION.format(check="db", plugin="postgres", option="querry", hint="; did you mean 'query'?"),
    ),
    "alert pack": (
        '[ops_observe.alerts]\npacks = ["api", "biling"]\n',
        "alerts.packs[1]",
        UNKNOWN_PACK.format(name="biling", hint="; did you mean 'billing'?"),
    ),
    "alert rule override": (
        "[ops_observe.alerts.rules.HighAPIErorRate]\nthreshold = 0.02\n",
        "alerts.rules.HighAPIErorRate",
        UNKNOWN_RULE.format(name="HighAPIErorRate", hint="; did you mean 'HighAPIErrorRate'?"),
    ),
    "disabled alert": (
        '[ops_observe.alerts]\ndisabled = ["RedisDwn"]\n',
        "alerts.disabled[0]",
        UNKNOWN_RULE.format(name="RedisDwn", hint="; did you mean 'RedisDown'?"),
    ),
}


@pytest.fixture(autouse=True)
def _postgres_plugin() -> None:
    need(importlib.util.find_spec("ops_observe_postgres"), "the ops-observe-postgres plugin is not installed")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPS_OBSERVE_SETTINGS"}
    return subprocess.run(
        [sys.executable, "-m", "ops_observe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_every_command_refuses_the_file_with_the_key_named(tmp_path: Path, case: str, command: str) -> None:
    text, key, problem = BAD_FILES[case]
    (tmp_path / "bad.toml").write_text(text)
    result = run_cli(command, "--settings", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"ops-observe: bad.toml: {key}: {problem}\n"
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_wrap_refuses_the_same_file_with_the_same_message(tmp_path: Path, case: str) -> None:
    text, key, problem = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never called")

    with pytest.raises(ops_observe.SettingsError) as caught:
        ops_observe.wrap(app, settings=path)
    assert caught.value.key == key
    assert str(caught.value) == f"{path}: {key}: {problem}"


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_validate_is_the_step_and_load_settings_only_reads(tmp_path: Path, case: str) -> None:
    text, key, problem = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    settings = load_settings(path)  # the file's own shape is fine
    with pytest.raises(ops_observe.SettingsError) as caught:
        validate(settings)
    assert (caught.value.key, caught.value.problem) == (key, problem)


def test_good_settings_pass_every_step(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(
        '[ops_observe]\nmiddleware = ["correlation", "metrics"]\n'
        '[ops_observe.health.checks.db]\nplugin = "postgres"\ndsn = "postgresql://app@db/app"\nquery = "SELECT 2"\n'
        '[ops_observe.alerts]\npacks = ["api", "billing"]\n'
    )
    settings = load_settings(path)
    assert validate(settings) is settings
    assert run_cli("settings", "--settings", "good.toml", cwd=tmp_path).returncode == 0


def test_a_check_is_validated_even_with_the_health_endpoints_off(tmp_path: Path) -> None:
    settings = {"health": {"enabled": False, "checks": {"db": {"plugin": "postgress", "dsn": "postgresql://x@db/x"}}}}
    with pytest.raises(ops_observe.SettingsError) as caught:
        validate(load_settings(settings))
    assert caught.value.key == "health.checks.db.plugin"


def test_plugins_lists_everything_before_refusing_the_settings(tmp_path: Path) -> None:
    text, key, problem = BAD_FILES["check plugin"]
    (tmp_path / "bad.toml").write_text(text)
    result = run_cli("plugins", "--settings", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "ops_observe.health_checks:" in result.stdout and "postgres" in result.stdout
    assert result.stderr == f"ops-observe: bad.toml: {key}: {problem}\n"


def test_a_dotted_middleware_path_resolves_from_the_app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "audit_mw_h7.py").write_text("def factory(app, settings):\n    return app\n")
    (tmp_path / "s.toml").write_text('[ops_observe]\nmiddleware = ["correlation", "audit_mw_h7:factory"]\n')
    assert run_cli("settings", "--settings", "s.toml", cwd=tmp_path).returncode == 2  # not on the path
    result = run_cli("settings", "--settings", "s.toml", "--app-dir", "src", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["settings", "--settings", "s.toml", "--app-dir", "src"]) == 0
