"""What the reliability tests share: real servers in subprocesses, a load generator that counts
every answer, a loopback span collector, a listener that hangs, and readers for logs and metrics.

Everything is on 127.0.0.1 and bounded in time. The load generator is a small HTTP/1.1 client on
raw asyncio streams (keep-alive connections, one request in flight on each), rather than ``wrk``:
it sends exactly the number of requests asked for, knows the answer to each one (status,
correlation id, the worker's pid in the body), and costs a fraction of what httpx would, which
leaves the two cores to the server under test.

The size of the load is ``$OPS_OBSERVE_RELIABILITY_REQUESTS`` (default :data:`DEFAULT_REQUESTS`).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services import free_port

DEFAULT_REQUESTS = 5000
REQUESTS = int(os.environ.get("OPS_OBSERVE_RELIABILITY_REQUESTS", str(DEFAULT_REQUESTS)))
"""Requests of each load run: ``$OPS_OBSERVE_RELIABILITY_REQUESTS`` (``100000`` for the full run)."""
CONNECTIONS = 64
NS = "rel"
"""The metric namespace of the app under test (``service_name = "rel"``)."""
ACCESS_LOGGER = "ops_observe.access"

API_SOURCE = textwrap.dedent(
    '''
    """The app under test, unwrapped: a route per behaviour the reliability tests load or break."""

    import asyncio
    import os
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route, WebSocketRoute


    async def load(request):
        return PlainTextResponse(str(os.getpid()))


    async def beat(request):
        return PlainTextResponse("beat")


    async def upload(request):
        body = await request.body()
        return PlainTextResponse(str(len(body)))


    async def stream(request):
        async def chunks():
            for i in range(10):
                yield b"chunk %d\\n" % i
                await asyncio.sleep(0.05)

        return StreamingResponse(chunks(), media_type="text/plain")


    async def events(request):
        pause = float(request.query_params.get("pause", "0"))

        async def messages():
            for i in range(3):
                yield f"id: {i}\\ndata: event {i}\\n\\n"
                await asyncio.sleep(pause)

        return StreamingResponse(messages(), media_type="text/event-stream")


    async def boom(request):
        raise RuntimeError("failed before the response")


    class BoomAfterStart:
        """A raw ASGI endpoint that fails once its response has started."""

        async def __call__(self, scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("failed after the response started")


    async def echo(websocket):
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo {text}")


    @asynccontextmanager
    async def lifespan(app):
        if os.environ.get("REL_LIFESPAN") == "fail-startup":
            raise RuntimeError("the database is not there")
        yield
        if os.environ.get("REL_LIFESPAN") == "fail-shutdown":
            raise RuntimeError("the pool would not close")


    api = Starlette(
        routes=[
            Route("/load/{n}", load),
            Route("/beat", beat),
            Route("/upload", upload, methods=["POST"]),
            Route("/stream", stream),
            Route("/events", events),
            Route("/boom", boom),
            Route("/boom-after-start", BoomAfterStart()),
            WebSocketRoute("/ws", echo),
        ],
        lifespan=lifespan,
    )
    '''
)

APP_SOURCE = textwrap.dedent(
    '''
    """The app under test, wrapped by its module (uvicorn and gunicorn import this one)."""

    import ops_observe
    from rel_api import api

    app = ops_observe.wrap(api)
    '''
)


# -- settings -----------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` as TOML: strings, numbers, booleans and lists of them (JSON's spelling is TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def settings_toml(sections: dict[str, Any]) -> str:
    """A settings file from ``{"": {top-level keys}, "logging": {...}, "health.checks.db": {...}}``."""
    lines: list[str] = []
    for name, keys in sections.items():
        lines.append(f"[ops_observe{'.' + name if name else ''}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in keys.items())
        lines.append("")
    return "\n".join(lines)


def write_app(workdir: Path, sections: dict[str, Any]) -> Path:
    """Write the app's modules and its settings file into ``workdir``; returns the settings file."""
    (workdir / "rel_api.py").write_text(API_SOURCE)
    (workdir / "rel_app.py").write_text(APP_SOURCE)
    path = workdir / "ops_observe.toml"
    path.write_text(settings_toml(sections))
    return path


def base_sections(workdir: Path, zipkin_endpoint: str | None, **tracing: Any) -> dict[str, Any]:
    """The default stack (every middleware), JSON lines to ``workdir/app.log``, every request traced."""
    sections: dict[str, Any] = {"": {"service_name": NS}, "logging": {"sink": str(workdir / "app.log")}}
    if zipkin_endpoint is not None:
        sections["tracing"] = {"exporter": "zipkin", "zipkin_endpoint": zipkin_endpoint, "sample_ratio": 1.0, **tracing}
    return sections


# -- servers ------------------------------------------------------------------------------------


def uvicorn_command(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "rel_app:app", "--host", "127.0.0.1", "--port", str(port), *options]


def serve_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "ops_observe", "serve", "rel_api:api", "--port", str(port), "--workers", str(workers)]


@functools.cache
def _gunicorn_control_socket_option() -> tuple[str, ...]:
    # Recent gunicorn versions open a control socket in ~/.gunicorn, shared by all of the user's:
    # a test's server must not touch it. Older versions have neither the socket nor the option.
    help_text = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    return ("--no-control-socket",) if "--no-control-socket" in help_text else ()


def gunicorn_command(port: int, workers: int, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "rel_app:app",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "20",
        *_gunicorn_control_socket_option(),
        *options,
    ]


class Server:
    """One server process (uvicorn, ``ops-observe serve`` or gunicorn) serving the app of ``workdir``.

    It runs in a session of its own, so that a server that will not stop is killed with all its
    workers (and nothing else). Its stdout and stderr go to files in ``workdir``.
    """

    def __init__(
        self,
        workdir: Path,
        command: Callable[[int], list[str]],
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.out = workdir / "server.out"
        self.err = workdir / "server.err"
        (workdir / "tmp").mkdir(exist_ok=True)
        inherited = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PROMETHEUS_MULTIPROC_DIR", "OPS_OBSERVE_SETTINGS") and not k.startswith("OTEL_")
        }
        full_env = {
            **inherited,
            "PYTHONPATH": str(workdir),
            "OPS_OBSERVE_SETTINGS": str(workdir / "ops_observe.toml"),
            "TMPDIR": str(workdir / "tmp"),
            **(env or {}),
        }
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                command(self.port), cwd=workdir, env=full_env, stdout=out, stderr=err, start_new_session=True
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_up(self, timeout: float = 60.0) -> None:
        """Wait until ``/health`` answers 200; fail with the server's stderr if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}: {self.stderr()}")
            try:
                if httpx.get(self.url("/health"), timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the server did not answer within {timeout} s: {self.stderr()}")
            time.sleep(0.1)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stop(self, timeout: float = 45.0) -> int:
        """SIGTERM, as a process manager stops a server, then wait; killed (and failed) if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the server did not stop within {timeout} s of SIGTERM: {self.stderr()}")

    def kill(self) -> None:
        """Kill the server's session (its workers with it)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def log_lines(path: Path, *, torn_last: bool = False, writing: bool = False) -> list[dict[str, Any]]:
    """Every line of a JSON log file, parsed; fails naming the lines that are not a JSON object.

    ``torn_last``: the file's last line may be cut short (the disk filled up while it was written).
    ``writing``: the server is still writing: a last line without its newline is left for the next
    read (a reader can see a line's write in parts, one page of the file at a time).
    """
    bad: list[str] = []
    lines: list[dict[str, Any]] = []
    if not path.exists():
        return lines
    content = path.read_text(encoding="utf-8", errors="replace")
    if writing and not content.endswith("\n"):
        content = content[: content.rfind("\n") + 1]
    texts = content.splitlines()
    if torn_last and texts and not texts[-1].endswith("}"):
        texts.pop()
    for number, text in enumerate(texts, 1):
        try:
            line = json.loads(text)
        except ValueError:
            bad.append(f"{number}: {text[:200]!r}")
            continue
        if not isinstance(line, dict):
            bad.append(f"{number}: {text[:200]!r}")
            continue
        lines.append(line)
    assert not bad, f"{len(bad)} log lines are not JSON objects: {bad[:5]}"
    return lines


def access_lines(path: Path) -> list[dict[str, Any]]:
    return [line for line in log_lines(path) if line.get("logger") == ACCESS_LOGGER]


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def sample_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


# -- span collectors ----------------------------------------------------------------------------


class SpanCollector:
    """A loopback Zipkin ``POST /api/v2/spans`` endpoint that keeps what a count needs of each span.

    Lighter than the tracing tests' validating collector (tests/tracing/tracing_support.py): a
    load run sends it 100,000 spans. It can be started again on the port it had (a collector that
    comes back after an outage).
    """

    def __init__(self, port: int = 0) -> None:
        self.spans: list[dict[str, Any]] = []
        self.posts = 0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                batch = json.loads(body)
                with collector._lock:
                    collector.posts += 1
                    collector.spans.extend(batch)
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/api/v2/spans"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.spans)

    def correlation_ids(self) -> list[str]:
        with self._lock:
            return [span.get("tags", {}).get("correlation_id", "") for span in self.spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingListener:
    """Accepts connections and never answers: a collector that hangs (until :meth:`close`)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/api/v2/spans"
        self.accepted: list[socket.socket] = []
        self._closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)  # kept open, never read, never answered

    def close(self) -> None:
        self._closed.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def dead_endpoint() -> str:
    """A Zipkin endpoint where nothing listens (a collector that is down)."""
    return f"http://127.0.0.1:{free_port()}/api/v2/spans"


# -- the load generator -------------------------------------------------------------------------


@dataclass
class Answer:
    """One response: its status, its correlation id and its body."""

    path: str
    status: int
    correlation_id: str
    body: bytes


@dataclass
class Load:
    """What a load run got back."""

    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for answer in self.answers:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return counts


def request_bytes(path: str, method: str = "GET", headers: Iterable[tuple[str, str]] = ()) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{extra}\r\n".encode("latin-1")


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send one request on a keep-alive connection and read its response (``content-length`` bodies)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    return int(status_line.split(b" ", 2)[1]), headers, body


async def _worker(
    port: int,
    next_index: Callable[[], int | None],
    path_of: Callable[[int], str],
    load: Load,
    headers: Iterable[tuple[str, str]],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (index := next_index()) is not None:
            path = path_of(index)
            try:
                status, response_headers, body = await exchange(reader, writer, request_bytes(path, headers=headers))
            except (OSError, asyncio.IncompleteReadError) as exc:
                load.errors.append(f"{path}: {exc!r}")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            correlation = response_headers.get(b"x-correlation-id", b"").decode("latin-1")
            load.answers.append(Answer(path, status, correlation, body))
    finally:
        writer.close()


async def load_async(
    port: int,
    total: int,
    *,
    connections: int = CONNECTIONS,
    path_of: Callable[[int], str] = lambda i: f"/load/{i}",
    headers: Iterable[tuple[str, str]] = (),
    stop: asyncio.Event | None = None,
) -> Load:
    """Send ``total`` requests (or until ``stop`` is set) over ``connections`` keep-alive connections."""
    counter = itertools.count()
    load = Load()

    def next_index() -> int | None:
        if stop is not None and stop.is_set():
            return None
        index = next(counter)
        return index if index < total else None

    start = time.perf_counter()
    await asyncio.gather(*(_worker(port, next_index, path_of, load, tuple(headers)) for _ in range(connections)))
    load.seconds = time.perf_counter() - start
    return load


def run_load(port: int, total: int, *, timeout: float, **options: Any) -> Load:
    """:func:`load_async` from synchronous code, bounded by ``timeout`` seconds."""

    async def bounded() -> Load:
        return await asyncio.wait_for(load_async(port, total, **options), timeout)

    return asyncio.run(bounded())


def fresh_connection_get(port: int, path: str, timeout: float = 10.0) -> Answer:
    """One request on a connection of its own (so that any worker may accept it)."""

    async def one() -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, headers, body = await exchange(reader, writer, request_bytes(path))
        finally:
            writer.close()
        return Answer(path, status, headers.get(b"x-correlation-id", b"").decode("latin-1"), body)

    async def bounded() -> Answer:
        return await asyncio.wait_for(one(), timeout)

    return asyncio.run(bounded())


def every_worker_answers(server: Server, workers: int, pids: set[str], limit: int = 300) -> list[str]:
    """Fresh connections to ``/load/extra-<i>`` until each of ``workers`` answered at least once
    (any worker may accept a connection, so a few long ones need not reach all); ``pids`` holds
    the workers seen so far and is updated. Returns the extra requests' correlation ids."""
    extra: list[str] = []
    for i in range(limit):
        if len(pids) >= workers:
            break
        answer = fresh_connection_get(server.port, f"/load/extra-{i}")
        assert answer.status == 200, answer
        pids.add(answer.body.decode())
        extra.append(answer.correlation_id)
    assert len(pids) == workers, f"only {len(pids)} of {workers} workers answered in {limit} fresh connections"
    return extra
