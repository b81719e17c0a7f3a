"""A real server: uvicorn's own lines, the app's and the access log all come out as JSON on stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from services import free_port, get_when_up

APP = textwrap.dedent(
    """
    import logging

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    import ops_observe
    from ops_observe import get_logger

    log = get_logger("demo")


    async def item(request):
        log.info("handling", item=request.path_params["item_id"], email="bob@example.com")
        logging.getLogger("demo.stdlib").warning("from logging")
        return PlainTextResponse("ok")


    app = ops_observe.wrap(
        Starlette(routes=[Route("/items/{item_id}", item)]),
        settings={"service_name": "demo", "middleware": ["correlation", "logging"], "logging": {"sink": "stdout"}},
    )
    """
)


@pytest.mark.parametrize("uvicorn_access_log", [False, True])
def test_uvicorn_output_is_one_json_stream(tmp_path: Path, uvicorn_access_log: bool) -> None:
    (tmp_path / "demo_app.py").write_text(APP)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "uvicorn", "demo_app:app", "--port", str(port)]
    if not uvicorn_access_log:
        command.append("--no-access-log")
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/items/7"
        response = get_when_up(url, process=server, timeout=20, headers={"x-correlation-id": "req-7"})
        assert response.status_code == 200
        httpx.get(f"http://127.0.0.1:{port}/missing")
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    lines = [json.loads(line) for line in out.splitlines()]  # every line of stdout is JSON
    assert err == "", err  # and nothing went to stderr as plain text
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "demo", "demo.stdlib", "ops_observe.access"} <= loggers
    messages = [line["message"] for line in lines]
    assert any(m.startswith("Uvicorn running on") for m in messages)
    assert any(m == "Shutting down" for m in messages)
    request_lines = [line for line in lines if line["correlation_id"] == "req-7" and line["logger"] != "uvicorn.access"]
    assert [line["message"] for line in request_lines] == ["handling", "from logging", "GET /items/7 200"]
    # uvicorn's own access log: silenced by --no-access-log, else routed into the stream too.
    assert ("uvicorn.access" in loggers) is uvicorn_access_log
    assert request_lines[0]["email"] == "[REDACTED:email]" and request_lines[0]["service"] == "demo"
    assert request_lines[2]["route"] == "/items/{item_id}"
    assert any(line.get("status") == 404 and line["level"] == "WARNING" for line in lines)
