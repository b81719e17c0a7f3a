"""End to end under uvicorn: SIGTERM makes readiness fail while the server still serves, then it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from services import free_port

DRAIN = 3.0

APP = textwrap.dedent(
    """
    import ops_observe

    async def inner(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    open("shutdown-ran", "w").close()
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    app = ops_observe.wrap(inner, settings={"middleware": [], "health": {"drain_seconds": %s}})
    """
)


def test_sigterm_drains_then_uvicorn_stops(tmp_path: Path) -> None:
    (tmp_path / "drain_app.py").write_text(APP % DRAIN)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "drain_app:app",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

        server.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # While draining: readiness fails, liveness and the app still answer.
        ready = httpx.get(f"{base}/health/ready", timeout=1)
        live = httpx.get(f"{base}/health", timeout=1)
        app = httpx.get(f"{base}/", timeout=1)
        answered = time.monotonic() - signalled
        assert answered < DRAIN, "the checks below ran after the drain; the machine is too slow for this test"
        assert ready.status_code == 503 and ready.json()["reason"] == "shutting down"
        assert live.status_code == 200 and app.text == "app"
        # uvicorn re-raises the signal it caught once it has shut down gracefully: -SIGTERM.
        assert server.wait(timeout=DRAIN + 15) in (0, -signal.SIGTERM)
        assert time.monotonic() - signalled >= DRAIN * 0.9  # it did wait for the drain
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        output = ""
        if server.stdout is not None:
            output = server.stdout.read().decode()
            server.stdout.close()
    assert "Traceback" not in output, output
    # Our handler handed the signal to uvicorn's: a graceful stop, the app's lifespan shutdown included.
    assert (tmp_path / "shutdown-ran").exists(), output
