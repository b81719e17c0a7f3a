"""A real server: uvicorn's own lines, the app's and the access log come out as one JSON stream on
stdout, one line per request and one per failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


    async def boom(request):
        raise RuntimeError("kaboom")


    app = ops_observe.wrap(
        Starlette(routes=[Route("/items/{item_id}", item), Route("/boom", boom)]),
        settings=SETTINGS,
    )
    """
)


def settings(**logging: Any) -> dict[str, Any]:
    return {"service_name": "demo", "middleware": ["correlation", "logging"], "logging": {"sink": "stdout", **logging}}


Served = tuple[list[dict[str, Any]], str]


def serve(
    tmp_path: Path, app_settings: dict[str, Any], requests: Callable[[str], None], *, options: tuple[str, ...] = ()
) -> Served:
    """Run ``uvicorn demo_app:app`` on a free port, make ``requests(base_url)``, stop it with
    SIGINT; returns every line of its stdout parsed as JSON (failing on one that is not), and its stderr."""
    (tmp_path / "demo_app.py").write_text(APP.replace("SETTINGS", repr(app_settings)))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "uvicorn", "demo_app:app", "--port", str(port), *options]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        get_when_up(f"{base}/items/0", process=server, timeout=20)
        requests(base)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    return [json.loads(line) for line in out.splitlines()], err


def test_uvicorn_output_is_one_json_stream(tmp_path: Path) -> None:
    def requests(base: str) -> None:
        response = httpx.get(f"{base}/items/7", headers={"x-correlation-id": "req-7"})
        assert response.status_code == 200
        httpx.get(f"{base}/missing")

    lines, err = serve(tmp_path, settings(), requests)
    assert err == "", err  # nothing went to stderr as plain text
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "demo", "demo.stdlib", "ops_observe.access"} <= loggers
    messages = [line["message"] for line in lines]
    assert any(m.startswith("Uvicorn running on") for m in messages)
    assert any(m == "Shutting down" for m in messages)
    request_lines = [line for line in lines if line["correlation_id"] == "req-7"]
    assert [line["message"] for line in request_lines] == ["handling", "from logging", "GET /items/7 200"]
    assert request_lines[0]["email"] == "[REDACTED:email]" and request_lines[0]["service"] == "demo"
    assert request_lines[2]["route"] == "/items/{item_id}"
    assert any(line.get("status") == 404 and line["level"] == "WARNING" for line in lines)


@pytest.mark.parametrize(
    ("keep", "options", "uvicorn_lines"),
    [
        (False, (), 0),  # uvicorn's access log is on by default: ours silences it
        (True, (), 1),  # keep_server_access_log: both
        (True, ("--no-access-log",), 0),  # uvicorn's own switch still works
    ],
    ids=["default", "kept", "kept-but-uvicorn-no-access-log"],
)
def test_one_access_line_per_request(tmp_path: Path, keep: bool, options: tuple[str, ...], uvicorn_lines: int) -> None:
    def requests(base: str) -> None:
        for n in (1, 2, 3):  # /items/0 is the readiness probe
            assert httpx.get(f"{base}/items/{n}", headers={"x-correlation-id": f"req-{n}"}).status_code == 200

    app_settings = settings(keep_server_access_log=True) if keep else settings()
    lines, err = serve(tmp_path, app_settings, requests, options=options)
    assert err == "", err
    for n in (1, 2, 3):  # /items/0 is the readiness probe
        request_lines = [line for line in lines if line["correlation_id"] == f"req-{n}"]
        ours = [line for line in request_lines if line["logger"] == "ops_observe.access"]
        uvicorns = [line for line in lines if line["logger"] == "uvicorn.access" and f"/items/{n} " in line["message"]]
        assert [line["message"] for line in ours] == [f"GET /items/{n} 200"]
        assert len(uvicorns) == uvicorn_lines, uvicorns


def test_a_failure_is_one_line_with_its_traceback_and_correlation_id(tmp_path: Path) -> None:
    answers: list[httpx.Response] = []

    def requests(base: str) -> None:
        answers.append(httpx.get(f"{base}/boom"))
        answers.append(httpx.get(f"{base}/boom"))

    lines, err = serve(tmp_path, settings(), requests)
    assert err == "", err
    assert [answer.status_code for answer in answers] == [500, 500]
    ids = [answer.headers["x-correlation-id"] for answer in answers]
    assert len(set(ids)) == 2
    failures = [line for line in lines if "exception" in line]
    assert [line["correlation_id"] for line in failures] == ids  # one line each, with the request's id
    for line in failures:
        assert line["logger"] == "ops_observe.access" and line["message"] == "GET /boom 500"
        assert line["level"] == "ERROR" and line["error"] == "RuntimeError"
        assert line["exception"]["message"] == "kaboom" and "Traceback" in line["exception"]["traceback"]
    # uvicorn's "Exception in ASGI application", without the correlation id, is not written.
    assert not any(line["message"].startswith("Exception in ASGI application") for line in lines)
    assert all(line["correlation_id"] in ids for line in lines if line["level"] == "ERROR")


def test_a_failure_not_in_the_access_log_is_still_reported_by_uvicorn(tmp_path: Path) -> None:
    """An excluded path has no access line: uvicorn's report of its exception stays, the only one."""

    def requests(base: str) -> None:
        assert httpx.get(f"{base}/boom").status_code == 500

    lines, err = serve(tmp_path, settings(access={"exclude_paths": ["/boom"]}), requests)
    assert err == "", err
    failures = [line for line in lines if "exception" in line]
    assert [line["message"] for line in failures] == ["Exception in ASGI application\n"]
    assert failures[0]["logger"] == "uvicorn.error"


SCRIPT = textwrap.dedent(
    """
    import sys

    import uvicorn

    import demo_app

    uvicorn.run(demo_app.app, port=int(sys.argv[1]))
    """
)


def test_uvicorn_run_after_wrap_is_one_stream_from_startup_on(tmp_path: Path) -> None:
    """``uvicorn.run(app)`` configures uvicorn's logging after ``wrap()`` ran (at import), putting its
    console handlers back: taken off again at lifespan startup, and its access log stays silenced."""
    (tmp_path / "demo_app.py").write_text(APP.replace("SETTINGS", repr(settings())))
    (tmp_path / "run.py").write_text(SCRIPT)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "run.py", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        get_when_up(f"{base}/items/0", process=server, timeout=20)
        answer = httpx.get(f"{base}/boom")
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    # Before startup, uvicorn's first lines ("Started server process", "Waiting for application
    # startup.") are its own, on stderr: its logging is configured after the app was imported.
    assert "Exception in ASGI application" not in err and "GET /boom" not in err, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["correlation_id"] for line in lines if "exception" in line] == [answer.headers["x-correlation-id"]]
    assert not any(line["logger"] == "uvicorn.access" for line in lines)
    assert any(line["message"].startswith("Uvicorn running on") for line in lines)
