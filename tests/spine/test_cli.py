"""The ``ops-observe`` command: exit statuses, masked settings, plugin listing, serving the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ops_observe.cli import main

from services import free_port, get_when_up


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops_observe", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_settings_prints_masked_json(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[ops_observe]\nservice_name = "billing"\n'
        '[ops_observe.health.checks.db]\nplugin = "postgres"\ndsn = "postgresql://app:s3cret@db/app"\n'
    )
    result = run_cli("settings", "--settings", str(path))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["service_name"] == "billing"
    assert shown["health"]["checks"]["db"]["dsn"] == "postgresql://app:****@db/app"
    assert "s3cret" not in result.stdout


@pytest.mark.parametrize("command", ["settings", "plugins", "check", "serve"])
def test_bad_settings_exit_2_with_one_line_and_no_traceback(tmp_path: Path, command: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[ops_observe.tracing]\nsample_ratio = 1.5\n")
    result = run_cli(command, "--settings", str(path))
    assert result.returncode == 2
    assert result.stderr == f"ops-observe: {path}: tracing.sample_ratio: must be between 0 and 1, got 1.5\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_plugins_lists_every_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for line in ("ops_observe.middleware:", "ops_observe.health_checks:", "ops_observe.alert_packs:"):
        assert line in out
    assert "correlation" in out and "ok" in out


def test_plugins_exits_1_when_one_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "broken_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken_dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ops_observe.middleware]\nbroken = not_there_xyz:mw\n")
    result = run_cli("plugins", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert (
        "FAILED: ops_observe.middleware: plugin 'broken' from broken_dist 1.0: module 'not_there_xyz' is not installed"
        in result.stdout
    )


def test_serve_runs_the_wrapped_demo(tmp_path: Path) -> None:
    port = free_port()
    settings = tmp_path / "s.toml"
    settings.write_text('[ops_observe]\nservice_name = "demo"\nmiddleware = ["correlation"]\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "ops_observe", "serve", "--settings", str(settings), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        response = get_when_up(f"http://127.0.0.1:{port}/items/1", headers={"X-Correlation-ID": "cli-1"})
        assert response.json() == {"id": 1, "name": "GPU hours"}
        assert response.headers["x-correlation-id"] == "cli-1"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_a_named_app_that_cannot_be_imported_exits_2() -> None:
    result = run_cli("serve", "no_such_module_xyz:app")
    assert result.returncode == 2
    assert "module 'no_such_module_xyz' is not installed" in result.stderr


def test_docs_name_every_command() -> None:
    from ops_observe.cli import _parser

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"`ops-observe {name}" in text


def test_serve_with_two_workers_counts_exactly(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    settings = tmp_path / "s.toml"
    settings.write_text('[ops_observe]\nservice_name = "demo"\nmiddleware = ["correlation", "metrics"]\n')
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops_observe",
            "serve",
            "--settings",
            str(settings),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        get_when_up(f"http://127.0.0.1:{port}/health")
        for _ in range(20):  # a fresh connection each time, so both workers answer some
            assert httpx.get(f"http://127.0.0.1:{port}/items/1", timeout=5).status_code == 200
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        process.terminate()
        process.wait(timeout=30)
    total = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "demo_http_requests_total" and sample.labels.get("endpoint") == "/items/{item_id}"
    )
    assert total == 20


def test_version_comes_from_the_distribution() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"ops-observe {version('ops-observe')}\n"


def _helps() -> list[tuple[str, str]]:
    import argparse

    from ops_observe.cli import _parser

    found = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        found.append((name, parser.format_help()))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")

    walk(_parser(), "ops-observe")
    return found


def test_help_texts_are_plain_text() -> None:
    helps = _helps()
    names = {name for name, _ in helps}
    assert {"ops-observe serve", "ops-observe check", "ops-observe settings", "ops-observe plugins"} <= names
    for name, text in helps:
        for markup in ("`", ":class:", ":func:", "**"):
            assert markup not in text, f"{name} --help shows {markup!r}"
    assert "``" not in run_cli("--help").stdout


def test_settings_without_a_file_says_it_shows_the_defaults(tmp_path: Path) -> None:
    from ops_observe.cli import NO_FILE

    env = {k: v for k, v in os.environ.items() if k != "OPS_OBSERVE_SETTINGS"}
    result = subprocess.run(
        [sys.executable, "-m", "ops_observe", "settings"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0
    assert result.stderr == NO_FILE + "\n"
    assert NO_FILE == (
        "ops-observe: no settings file found (looked for $OPS_OBSERVE_SETTINGS, ./ops_observe.toml); showing the defaults"
    )
    assert json.loads(result.stdout)["service_name"] == "app"
    (tmp_path / "ops_observe.toml").write_text('[ops_observe]\nservice_name = "billing"\n')
    found = subprocess.run(
        [sys.executable, "-m", "ops_observe", "settings"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert (found.returncode, found.stderr) == (0, "")
    assert json.loads(found.stdout)["service_name"] == "billing"


@pytest.mark.parametrize("command", ["settings", "check", "plugins", "serve"])
@pytest.mark.parametrize(
    ("given", "how"),
    [
        ("bad.toml", "option"),
        ("./conf/../bad.toml", "option"),
        ("conf/bad.toml", "env"),
        ("ABSOLUTE", "option"),
        ("missing.toml", "option"),
    ],
)
def test_paths_in_errors_are_shown_as_the_user_gave_them(tmp_path: Path, command: str, given: str, how: str) -> None:
    (tmp_path / "conf").mkdir()
    for path in (tmp_path / "bad.toml", tmp_path / "conf" / "bad.toml"):
        path.write_text("[ops_observe.tracing]\nsample_ratio = 1.5\n")
    if given == "ABSOLUTE":
        given = str(tmp_path / "bad.toml")
    env = {k: v for k, v in os.environ.items() if k != "OPS_OBSERVE_SETTINGS"}
    args = [sys.executable, "-m", "ops_observe", command]
    if how == "env":
        env["OPS_OBSERVE_SETTINGS"] = given
    else:
        args += ["--settings", given]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 2
    if given == "missing.toml":
        assert result.stderr == "ops-observe: missing.toml: cannot read settings file: No such file or directory\n"
    else:
        assert result.stderr == f"ops-observe: {given}: tracing.sample_ratio: must be between 0 and 1, got 1.5\n"


def test_a_reader_that_goes_away_ends_the_output_without_a_traceback(tmp_path: Path) -> None:
    # `ops-observe settings | true`: the reader is gone before the first write (the interpreter starts
    # far slower than `true` exits), so the write meets a closed pipe every time.
    env = {k: v for k, v in os.environ.items() if k != "OPS_OBSERVE_SETTINGS"}
    done = subprocess.run(
        f"{sys.executable} -m ops_observe settings 2>err.txt | true; echo ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    errors = (tmp_path / "err.txt").read_text()
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
    assert done.stdout.strip() == "1"
