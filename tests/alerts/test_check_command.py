"""`ops-observe alerts check --metrics-url URL`: against a real wrapped app under uvicorn, and a drifted one.

The clean case is the demo served by `ops-observe serve` on a loopback port (behind a bearer
token, which the check takes from the same settings). The drifted ones are a raw ASGI app,
under uvicorn in a thread, serving an exposition that lacks a label the rules rely on.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ops_observe.alerts.check import check_metrics_url
from ops_observe.cli import main

from services import free_port, get_when_up, wait_for_port

NS = "ops_center"
TOKEN = "s3cret-scrape-token"

SETTINGS = f"""
[ops_observe]
service_name = "ops-center"
middleware = ["correlation", "tracing", "metrics"]

[ops_observe.tracing]
exporter = "none"

[ops_observe.metrics]
bearer_token = "{TOKEN}"

[ops_observe.health]
timeout = 1.0
[ops_observe.health.checks.db]
plugin = "tcp"
host = "127.0.0.1"
port = {{closed}}
[ops_observe.health.checks.cache]
plugin = "tcp"
host = "127.0.0.1"
port = {{closed}}

[ops_observe.alerts.rules.PostgreSQLDown]
check = "db"
[ops_observe.alerts.rules.RedisDown]
check = "cache"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The demo, wrapped, under uvicorn (`ops-observe serve`), after some traffic: (metrics URL, settings)."""
    workdir = tmp_path_factory.mktemp("alerts-check")
    settings = workdir / "ops_observe.toml"
    settings.write_text(SETTINGS.format(closed=free_port()))
    port = free_port()
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ops_observe", "serve", "--settings", str(settings), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        get_when_up(f"{base}/health", process=process)
        for path in ("/items/1", "/items/99", "/boom", "/health/ready"):
            httpx.get(base + path, timeout=10)
        httpx.post(f"{base}/credits/purchase", json={"amount": 5}, timeout=10)
        yield f"{base}/metrics", settings
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


class _Exposition:
    """A raw ASGI app serving one fixed exposition, under uvicorn in a thread."""

    def __init__(self, text: str) -> None:
        self.body = text.encode()
        self.port = free_port()
        # log_config=None: uvicorn leaves the process's logging alone (the other tests read it).
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, lifespan="off", log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})

    def __enter__(self) -> str:
        self.thread.start()
        wait_for_port(self.port)
        return f"http://127.0.0.1:{self.port}/metrics"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _check(capsys: pytest.CaptureFixture[str], url: str, settings: Path) -> tuple[int, list[str], str]:
    status = main(["alerts", "check", "--metrics-url", url, "--settings", str(settings)])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def test_a_clean_service_passes(served: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    url, settings = served
    status, lines, err = _check(capsys, url, settings)
    assert (status, err) == (0, ""), "\n".join(lines)
    (summary,) = lines  # no problem line, only the summary
    # business metrics the demo never recorded are declared without series: named, not failed
    assert re.fullmatch(rf"\d+ rules, \d+ selectors checked: 0 problems; labels not verified \(no series yet\): {NS}_.*",
                        summary)  # fmt: skip


def test_a_clean_service_passes_from_python(served: tuple[str, Path]) -> None:
    url, settings = served
    report = check_metrics_url(url, str(settings))
    assert report.ok and report.problems == ()
    assert report.rules > 50


def test_a_renamed_label_fails_naming_rule_metric_and_label(
    served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The service's own exposition, with ``endpoint`` of the request counter renamed ``route``."""
    url, settings = served
    text = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    drifted = "\n".join(
        line.replace("endpoint=", "route=") if line.startswith(f"{NS}_http_requests_total{{") else line
        for line in text.splitlines()
    )
    with _Exposition(drifted + "\n") as drifted_url:
        status, lines, _ = _check(capsys, drifted_url, settings)
    assert status == 1
    assert f"HighAPIErrorRate: {NS}_http_requests_total: missing label endpoint (it has method, route, status)" in lines
    assert re.match(rf"\d+ rules, \d+ selectors checked: {len(lines) - 1} problems", lines[-1])
    assert all(f"{NS}_http_requests_total: missing label endpoint" in line for line in lines[:-1])


def test_a_hand_written_exposition_lacking_a_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "ops_observe.toml"
    settings.write_text('[ops_observe]\nservice_name = "ops-center"\n[ops_observe.alerts]\npacks = ["api"]\n')
    text = (
        f"# HELP {NS}_http_requests_total HTTP requests.\n"
        f"# TYPE {NS}_http_requests_total counter\n"
        f'{NS}_http_requests_total{{method="GET",status="200"}} 3.0\n'
    )
    with _Exposition(text) as url:
        status, lines, _ = _check(capsys, url, settings)
    assert status == 1
    assert f"HighAPIErrorRate: {NS}_http_requests_total: missing label endpoint (it has method, status)" in lines
    assert f"SlowAPIResponse: {NS}_http_request_duration_seconds_bucket: no such metric in the exposition" in lines


def test_bad_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "ops_observe.toml"
    settings.write_text('[ops_observe.alerts]\ndisabled = ["HighAPIErorRate"]\n')
    status, lines, err = _check(capsys, "http://127.0.0.1:1/metrics", settings)
    assert status == 2 and lines == []
    assert err.startswith(f"ops-observe: {settings}: alerts.disabled[0]: ") and "did you mean 'HighAPIErrorRate'" in err


def test_an_unreadable_exposition_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "ops_observe.toml"
    settings.write_text("[ops_observe]\n")
    url = f"http://127.0.0.1:{free_port()}/metrics"
    status, lines, err = _check(capsys, url, settings)
    assert status == 2 and lines == []
    assert err.startswith(f"ops-observe: cannot read {url}: ")


def test_a_page_that_is_no_exposition_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "ops_observe.toml"
    settings.write_text("[ops_observe]\n")
    with _Exposition("<html><body>login</body></html>\n") as url:
        status, lines, err = _check(capsys, url, settings)
    assert status == 2 and lines == []
    assert err.startswith(f"ops-observe: {url} is not a Prometheus exposition: ")


def test_a_refused_scrape_exits_2(served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without the bearer token the service answers 403: nothing to check, and it says why."""
    url, _ = served
    settings = tmp_path / "ops_observe.toml"
    settings.write_text("[ops_observe]\n")
    status, _, err = _check(capsys, url, settings)
    assert status == 2
    assert err == f"ops-observe: cannot read {url}: HTTP 403\n"
