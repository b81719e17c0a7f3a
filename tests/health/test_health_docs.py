"""docs/health.md agrees with the code: generated option tables, metrics, TOML examples, the example package."""

from __future__ import annotations

import asyncio
import configparser
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from health_fixtures import fresh_plugins_fixture  # noqa: F401 - pytest fixtures
from health_support import get

import ops_observe
from ops_observe import plugins
from ops_observe.health import reference
from ops_observe.health.feature import STATUS_VALUES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the py310 tox env
    import tomli as tomllib

DOC = Path(__file__).resolve().parents[2] / "docs" / "health.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_check_option_tables_are_current(fresh_plugins: None) -> None:
    text = DOC.read_text()
    start, end = text.index(reference.BEGIN), text.index(reference.END) + len(reference.END)
    assert text[start:end] + "\n" == reference.render(), (
        "docs/health.md is stale: paste the output of python -m ops_observe.health.reference between the markers"
    )


def test_metrics_section_matches_the_registry() -> None:
    app = ops_observe.wrap(
        _noop, settings={"namespace": "ops_center", "middleware": [], "health": {"checks": {"m": {"plugin": "memory"}}}}
    )
    get(app, "/health/ready")
    names = {metric.name for metric in app.suite.registry.collect() if metric.name.startswith("ops_center_health")}
    assert names == {"ops_center_health_check_status", "ops_center_health_check_duration_seconds"}
    text = DOC.read_text()
    for name in names:
        assert f"`{name.replace('ops_center', '<ns>')}`" in text
    assert "`1` pass, `0.5` warn, `0` fail" in text
    assert STATUS_VALUES == {"pass": 1.0, "warn": 0.5, "fail": 0.0}


def test_every_toml_example_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "HEALTH_TOKEN", "LAGO_API_KEY"):
        monkeypatch.setenv(var, "postgresql://app:pw@db/app" if var == "DATABASE_URL" else "x")
    examples = [b for b in blocks("toml") if "[ops_observe" in b]
    assert len(examples) >= 4
    for example in examples:
        document = tomllib.loads(
            example if example.lstrip().startswith("[ops_observe]") else "[ops_observe]\n" + example
        )
        settings = ops_observe.load_settings(document["ops_observe"])
        if "plugin" in example and "smtp" not in example:
            ops_observe.wrap(_noop, settings=settings)  # the checks build: options match the classes


@pytest.fixture
def smtp_server() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.sendall(b"220 relay.test ESMTP ready\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_the_example_package_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: None, smtp_server: int
) -> None:
    source = next(b for b in blocks("python") if "class SmtpCheck" in b)
    setup_cfg = next(b for b in blocks("ini") if "ops_observe.health_checks" in b)
    config = configparser.ConfigParser()
    config.read_string(setup_cfg)
    package = tmp_path / "acme_health"
    package.mkdir()
    (package / "__init__.py").write_text(source)
    info = tmp_path / "acme_health-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {config['metadata']['name']}\nVersion: 1.0.0\n")
    entry_points = config["options.entry_points"]["ops_observe.health_checks"].strip()
    (info / "entry_points.txt").write_text(f"[ops_observe.health_checks]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.find.cache_clear()
    try:
        example = next(b for b in blocks("toml") if 'plugin = "smtp"' in b)
        check = tomllib.loads(example)["ops_observe"]["health"]["checks"]["mail"]
        check.update(host="127.0.0.1", port=smtp_server, critical=True)
        app = ops_observe.wrap(_noop, settings={"middleware": [], "health": {"checks": {"mail": check}}})
        body = get(app, "/health/ready").json()
        assert body["status"] == "pass", body
        assert body["checks"]["mail"]["plugin"] == "smtp"
        assert body["checks"]["mail"]["details"]["greeting"] == "220 relay.test ESMTP ready"
        check.update(port=1)
        down = ops_observe.wrap(_noop, settings={"middleware": [], "health": {"checks": {"mail": check}}})
        assert get(down, "/health/ready").status_code == 503
    finally:
        sys.modules.pop("acme_health", None)


async def _noop(scope: object, receive: object, send: object) -> None:
    await asyncio.sleep(0)
