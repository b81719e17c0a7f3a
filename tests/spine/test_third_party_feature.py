"""A third-party feature is as first-class as ours: its own settings section (validated, masked, listed),
an endpoint, lifespan hooks and a middleware, from a real distribution installed by pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "example_plugin"

SCRIPT = """
import asyncio, json
import ops_observe

async def app(scope, receive, send):
    assert scope["type"] == "http"  # no lifespan: the suite answers it, and runs the feature's hooks
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})

wrapped = ops_observe.wrap(app, settings={"middleware": ["correlation", "audit"], "audit": {"path": "/trail"}})

async def call(scope):
    sent = []
    queue = asyncio.Queue()
    for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}) if scope["type"] == "lifespan" else (
        {"type": "http.request", "body": b""},
    ):
        await queue.put(message)
    async def send(message):
        sent.append(message)
    await wrapped(scope, queue.get, send)
    return b"".join(m.get("body", b"") for m in sent).decode()

async def main():
    await call({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}})
    http = {"type": "http", "method": "GET", "headers": [], "query_string": b"", "root_path": "", "asgi": {"version": "3.0"}}
    await call({**http, "path": "/orders"})
    trail = await call({**http, "path": "/trail"})
    print(json.dumps({"trail": trail.splitlines(), "endpoints": sorted(wrapped.suite.endpoints)}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example distribution pip-installed into a folder of its own; the environment to run with it."""
    target = tmp_path_factory.mktemp("audit-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(EXAMPLE)],
        check=True,
        timeout=300,
    )
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60)


def test_feature_adds_its_endpoint_hooks_and_middleware(installed: dict[str, str]) -> None:
    result = run(installed, "-c", SCRIPT)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["trail"] == ["started", "stopped", "GET /orders", "GET /trail"]
    assert "/trail" in shown["endpoints"]


def test_its_section_is_shown_masked_and_checked(installed: dict[str, str], tmp_path: Path) -> None:
    settings = tmp_path / "ops_observe.toml"
    settings.write_text('[ops_observe]\nmiddleware = ["audit"]\n[ops_observe.audit]\nsigning_key = "s3cret-key"\n')
    result = run(installed, "-m", "ops_observe", "settings", "--settings", str(settings))
    assert result.returncode == 0, result.stderr
    assert "s3cret-key" not in result.stdout
    assert json.loads(result.stdout)["audit"] == {"enabled": None, "path": "/audit", "signing_key": "****"}

    settings.write_text('[ops_observe]\n[ops_observe.audit]\npth = "/x"\n')
    result = run(installed, "-m", "ops_observe", "settings", "--settings", str(settings))
    assert result.returncode == 2
    assert result.stderr.strip() == f"ops-observe: {settings}: audit.pth: unknown key 'pth'; did you mean 'path'?"
