"""Exact under faults: the dependencies, the trace collector and the log sink fail during traffic.

A real uvicorn serves the default stack while the test keeps it busy (8 keep-alive connections of
load), probes a tiny heartbeat route on a connection of its own, and asks ``/health/ready`` every
100 ms. Then something breaks. In every case:

- every request is still answered 200: a broken dependency, collector or sink changes nothing a
  client sees (the app's routes do not use them);
- the event loop is never blocked: the heartbeat's slowest answer stays under
  :data:`HEARTBEAT_LIMIT` (a blocking call on a frozen Redis would take the check's timeout);
- readiness tells the truth: 503 from one cache interval (plus :data:`SLACK`) after a critical
  dependency went down until it is back, 200 again one cache interval after it is back, and each
  answer within the check timeout (plus :data:`SLACK`) even when the dependency hangs;
- every loss is counted in a metric: spans the collector never got are in
  ``rel_tracing_spans_dropped_total``, to the span (received + dropped == requests traced); log
  lines the sink could not take are in ``rel_logging_lines_dropped_total``, to the line.

The time limits are loose on purpose (the machine is shared): they tell "never waited" from
"waited for a timeout", not fast from slow.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import (
    NS,
    HangingListener,
    Load,
    Server,
    SpanCollector,
    access_lines,
    base_sections,
    every_worker_answers,
    exchange,
    gunicorn_command,
    load_async,
    log_lines,
    request_bytes,
    sample_sum,
    scrape,
    uvicorn_command,
    write_app,
)

from services import free_port

pytestmark = pytest.mark.reliability

CACHE_SECONDS = 0.5
CHECK_TIMEOUT = 1.0
SLACK = 1.0
"""Seconds of scheduling noise allowed on top of each bound (a shared two-core machine)."""
HEARTBEAT_LIMIT = 0.75
"""The slowest heartbeat answer allowed, in seconds: under the check timeout, far over a normal answer."""
LOAD_CONNECTIONS = 8


@dataclass
class Run:
    """What happened while a scenario ran, in seconds since its start."""

    load: Load = field(default_factory=Load)
    beats: list[tuple[float, float, int]] = field(default_factory=list)
    """(sent at, latency, status) of each heartbeat."""
    ready: list[tuple[float, float, int]] = field(default_factory=list)
    """(sent at, latency, status) of each readiness probe."""
    marks: dict[str, tuple[float, float]] = field(default_factory=dict)
    """When each action started and ended."""
    scrapes: dict[str, str] = field(default_factory=dict)
    """Expositions taken by ``scrape:<name>`` actions."""

    @property
    def requests(self) -> int:
        """Requests to the app's own routes (load and heartbeat): what is traced and access-logged."""
        return len(self.load.answers) + len(self.beats)

    def slowest_beat(self) -> float:
        return max(latency for _, latency, _ in self.beats)


async def heartbeat(port: int, stop: asyncio.Event, run: Run, start: float) -> None:
    """``GET /beat`` every 20 ms on a keep-alive connection of its own, timing each answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            sent = time.perf_counter()
            status, _, _ = await exchange(reader, writer, request_bytes("/beat"))
            run.beats.append((sent - start, time.perf_counter() - sent, status))
            await asyncio.sleep(0.02)
    finally:
        writer.close()


async def readiness(port: int, stop: asyncio.Event, run: Run, start: float) -> None:
    """``GET /health/ready`` every 100 ms, as a load balancer would (each on a new connection)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while not stop.is_set():
            sent = time.perf_counter()
            response = await client.get("/health/ready", headers={"connection": "close"})
            run.ready.append((sent - start, time.perf_counter() - sent, response.status_code))
            await asyncio.sleep(0.1)


Action = tuple[float, str, Callable[[], Any]]


def play(port: int, actions: list[Action], duration: float) -> Run:
    """Keep the server busy for ``duration`` seconds and run each ``(at, name, action)`` at its time,
    in a thread (stopping a database takes a while; the traffic goes on meanwhile)."""
    run = Run()

    async def scenario() -> None:
        stop = asyncio.Event()
        start = time.perf_counter()
        tasks = [
            asyncio.ensure_future(load_async(port, 10**9, connections=LOAD_CONNECTIONS, stop=stop)),
            asyncio.ensure_future(heartbeat(port, stop, run, start)),
            asyncio.ensure_future(readiness(port, stop, run, start)),
        ]
        loop = asyncio.get_running_loop()
        try:
            for at, name, action in actions:
                await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
                began = time.perf_counter() - start
                result = await loop.run_in_executor(None, action)
                run.marks[name] = (began, time.perf_counter() - start)
                if name.startswith("scrape:"):
                    run.scrapes[name.removeprefix("scrape:")] = result
            await asyncio.sleep(max(0.0, start + duration - time.perf_counter()))
        finally:
            stop.set()
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        for result in done:
            if isinstance(result, BaseException):
                raise result
        assert isinstance(done[0], Load)
        run.load = done[0]

    asyncio.run(scenario())
    return run


def assert_served_throughout(run: Run) -> None:
    """Every request answered 200, and the loop never blocked."""
    assert run.load.errors == [], run.load.errors[:10]
    assert run.load.statuses.keys() == {200}, run.load.statuses
    assert len(run.load.answers) > 100, "the load did not run"
    assert {status for _, _, status in run.beats} == {200}
    assert run.slowest_beat() < HEARTBEAT_LIMIT, f"the event loop was blocked for {run.slowest_beat():.2f} s"


def assert_ready_tells_the_truth(run: Run, windows: list[tuple[str, str]]) -> None:
    """Readiness is 503 within a cache interval of each ``(down mark, up mark)``, 200 otherwise."""
    bound = CHECK_TIMEOUT + SLACK
    slow = [(at, latency) for at, latency, _ in run.ready if latency > bound]
    assert not slow, f"readiness took longer than the check timeout + {SLACK} s: {slow}"
    settle = CACHE_SECONDS + SLACK
    # (down began, down done, up began, up done) of each outage
    edges = [(*run.marks[down], *run.marks[up]) for down, up in windows]
    for at, latency, status in run.ready:
        answered = at + latency
        if any(down + settle <= at and answered <= up for _, down, up, _ in edges):
            assert status == 503, f"a dependency was down, yet readiness said {status} at {at:.2f} s"
        elif not any(began <= answered and at <= back + settle for began, _, _, back in edges):
            assert status == 200, f"every dependency was up, yet readiness said {status} at {at:.2f} s"
    for _, down, up, _ in edges:
        within = [s for at, latency, s in run.ready if down + settle <= at and at + latency <= up]
        assert within, "no readiness probe fell inside the outage: make it longer"


# -- dependencies -------------------------------------------------------------------------------


def health_sections(postgres: Any, redis: Any) -> dict[str, Any]:
    return {
        "health": {"cache_seconds": CACHE_SECONDS, "timeout": CHECK_TIMEOUT},
        "health.checks.db": {"plugin": "postgres", "dsn": postgres.dsn},
        "health.checks.cache": {"plugin": "redis", "url": redis.url},
    }


@pytest.mark.timeout(180)
def test_postgres_and_redis_stopped_frozen_and_restarted_during_traffic(
    tmp_path: Path, postgres_server: Any, redis_server: Any, collector: SpanCollector
) -> None:
    write_app(
        tmp_path, {**base_sections(tmp_path, collector.endpoint), **health_sections(postgres_server, redis_server)}
    )
    server = Server(tmp_path, lambda port: uvicorn_command(port))
    frozen: list[int] = []

    def freeze_redis() -> None:
        # SIGSTOP: the port still accepts connections (the kernel's backlog), nothing ever answers.
        assert redis_server.process is not None
        frozen.append(redis_server.process.pid)
        os.kill(redis_server.process.pid, signal.SIGSTOP)

    def thaw_redis() -> None:
        os.kill(frozen.pop(), signal.SIGCONT)

    try:
        server.wait_up()
        assert httpx.get(server.url("/health/ready"), timeout=10).status_code == 200
        run = play(
            server.port,
            [
                (1.0, "redis down", redis_server.stop),
                (3.0, "scrape:redis down", lambda: scrape(server.port)),
                (3.5, "redis up", redis_server.start),
                (5.0, "postgres down", postgres_server.stop),
                (7.0, "scrape:postgres down", lambda: scrape(server.port)),
                (7.5, "postgres up", postgres_server.start),
                (9.5, "redis frozen", freeze_redis),
                (11.5, "scrape:redis frozen", lambda: scrape(server.port)),
                (12.0, "redis thawed", thaw_redis),
            ],
            duration=14.0,
        )
        exposition = scrape(server.port)
    finally:
        while frozen:
            os.kill(frozen.pop(), signal.SIGCONT)
        code = server.stop()
    assert code in (0, -signal.SIGTERM), server.stderr()
    print(f"{run.requests} requests; slowest heartbeat {run.slowest_beat() * 1000:.0f} ms")
    assert_served_throughout(run)
    assert_ready_tells_the_truth(
        run, [("redis down", "redis up"), ("postgres down", "postgres up"), ("redis frozen", "redis thawed")]
    )

    # The health gauges say which dependency was down, at the scrape taken during each outage.
    status = f"{NS}_health_check_status"
    for name, down, up in [
        ("redis down", "cache", "db"),
        ("postgres down", "db", "cache"),
        ("redis frozen", "cache", "db"),
    ]:
        text = run.scrapes[name]
        assert sample_sum(text, status, check=down) == 0, name
        assert sample_sum(text, status, check=up) == 1, name
    assert sample_sum(exposition, status, check="cache") == sample_sum(exposition, status, check="db") == 1

    # Nothing lost meanwhile: every request counted, logged and traced once.
    counted = sum(sample_sum(exposition, f"{NS}_http_requests_total", endpoint=e) for e in ("/load/{n}", "/beat"))
    assert counted == run.requests
    lines = [line for line in access_lines(tmp_path / "app.log") if line["path"] != "/health/ready"]
    assert len(lines) == run.requests
    assert len({line["correlation_id"] for line in lines}) == run.requests
    assert collector.count() == run.requests
    assert sample_sum(exposition, f"{NS}_tracing_spans_dropped_total") == 0


# -- the trace collector ------------------------------------------------------------------------

EXPORT = {"schedule_delay": 0.2, "export_timeout": 1.0, "max_queue_size": 200, "max_export_batch_size": 100}
"""Export settings that make a broken collector show within seconds (the defaults take 5 s and 10 s)."""


def dropped(text: str) -> float:
    return sample_sum(text, f"{NS}_tracing_spans_dropped_total")


def wait_for_accounting(server: Server, expected: int, received: Callable[[], int], timeout: float = 20.0) -> str:
    """Scrape until every span is either received or counted as dropped; the last exposition."""
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(server.port)
        if dropped(text) + received() >= expected or time.monotonic() > deadline:
            return text
        time.sleep(0.25)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["down", "hanging", "down-then-back"])
def test_a_broken_collector_loses_spans_only_and_counts_every_one(tmp_path: Path, fault: str) -> None:
    collectors: list[SpanCollector] = []
    hanging: HangingListener | None = None
    port = free_port()
    if fault == "hanging":
        hanging = HangingListener()
        endpoint = hanging.endpoint
    else:
        endpoint = f"http://127.0.0.1:{port}/api/v2/spans"  # nothing listens there (yet)

    def collector_back() -> None:
        collectors.append(SpanCollector(port))

    def received() -> int:
        return sum(c.count() for c in collectors)

    write_app(tmp_path, base_sections(tmp_path, endpoint, **EXPORT))
    server = Server(tmp_path, lambda p: uvicorn_command(p))
    try:
        server.wait_up()
        actions: list[Action] = [(1.5, "collector back", collector_back)] if fault == "down-then-back" else []
        run = play(server.port, actions, duration=4.0)
        text = wait_for_accounting(server, run.requests, received)
    finally:
        code = server.stop()
        for collector in collectors:
            collector.close()
        if hanging is not None:
            hanging.close()
    assert code in (0, -signal.SIGTERM), server.stderr()
    assert_served_throughout(run)
    reasons = {
        r: sample_sum(text, f"{NS}_tracing_spans_dropped_total", reason=r) for r in ("queue_full", "export_failed")
    }
    print(f"{fault}: {run.requests} requests, {received()} spans received, dropped {reasons}")
    assert dropped(text) + received() == run.requests
    if fault == "down-then-back":
        assert received() > 0 and reasons["export_failed"] > 0
    else:
        assert received() == 0
    if fault == "hanging":
        assert hanging is not None and hanging.accepted, "the exporter never reached the hanging listener"
        assert reasons["queue_full"] > 0  # the stuck export let the queue fill
    # The access log is unaffected.
    assert len(access_lines(tmp_path / "app.log")) == run.requests


# -- the log sink -------------------------------------------------------------------------------

LINES_DROPPED = f"{NS}_logging_lines_dropped_total"


@pytest.fixture
def tiny_filesystem(tmp_path: Path, need: Callable[[object, str], None]) -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for the test: a log sink that fills up during the load."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True, timeout=30
    )
    need(result.returncode == 0, f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


SINKS = [
    "/dev/full",
    "/dev/full-2-gunicorn-workers",
    "tiny-tmpfs",
    "tiny-tmpfs-freed-again",
]
"""A sink that always fails (in one process, and in two workers whose losses add up in the
multiprocess metrics); a disk that fills up during the load; one that fills up, then gets room
again (another file removed, as log rotation does)."""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sink", SINKS)
def test_a_failing_log_sink_loses_lines_only_and_counts_every_one(
    tmp_path: Path, request: pytest.FixtureRequest, collector: SpanCollector, sink: str
) -> None:
    log_file = Path("/dev/full") if sink.startswith("/") else request.getfixturevalue("tiny_filesystem") / "app.log"
    filler = log_file.parent / "filler"
    actions: list[Action] = []
    if sink == "tiny-tmpfs-freed-again":
        filler.write_bytes(b"x" * 32 * 1024)

        def free_the_disk() -> None:
            deadline = time.monotonic() + 10
            while sample_sum(scrape(server.port), LINES_DROPPED) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # full first
            filler.unlink()

        actions.append((1.0, "disk freed", free_the_disk))
    sections = base_sections(tmp_path, collector.endpoint)
    sections["logging"] = {"sink": str(log_file)}
    write_app(tmp_path, sections)
    # --log-level warning: the access lines are the only lines written, so lines written plus
    # lines counted as lost must come to the number of requests exactly.
    if sink.endswith("gunicorn-workers"):
        (tmp_path / "metrics").mkdir()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        server = Server(tmp_path, lambda port: gunicorn_command(port, 2, "--log-level", "warning"), env=env)
    else:
        server = Server(tmp_path, lambda port: uvicorn_command(port, "--log-level", "warning"))
    try:
        server.wait_up()
        run = play(server.port, actions, duration=3.0)
        if sink.endswith("gunicorn-workers"):  # both workers lose lines, and their counts add up
            pids = {answer.body.decode() for answer in run.load.answers}
            extra = every_worker_answers(server, 2, pids)
        else:
            extra = []
        text = scrape(server.port)
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM), server.stderr()
    assert_served_throughout(run)
    # A disk that fills up in the middle of a line leaves that line cut short, at the end of the
    # file: it is one of the lines counted as lost. Every other line is whole.
    written = 0 if sink.startswith("/dev/full") else len(log_lines(log_file, torn_last=True))
    lost = sample_sum(text, LINES_DROPPED)
    requests = run.requests + len(extra)
    print(f"{sink}: {requests} requests, {written} lines written, {lost:.0f} counted as lost")
    assert written + lost == requests
    assert lost > 0
    if not sink.startswith("/dev/full"):
        assert written > 0
    # Said once on stderr (by each worker that served), then only counted.
    workers = 2 if sink.endswith("gunicorn-workers") else 1
    assert 1 <= server.stderr().count("a log line could not be written") <= workers, server.stderr()
    assert collector.count() == requests  # spans are unaffected
