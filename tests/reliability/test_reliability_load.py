"""Exact under load: every request through the default stack is answered, logged once, counted once
and traced once, with one worker and across several (uvicorn, ``ops-observe serve``, gunicorn).

Each case serves the app on a real server, sends :data:`REQUESTS` requests over 64 keep-alive
connections, and checks, request by request:

- every answer is a 200 (nothing we add turns a request into an error, none is lost);
- the JSON log file holds exactly one access line per request path, each with the correlation id
  the client got back, all distinct, and every line of the file is valid JSON (several workers
  append to one file);
- ``rel_http_requests_total`` on ``/metrics`` equals the requests sent, whichever worker answers
  the scrape (prometheus-client's multiprocess mode, set up by the suite);
- with tracing at ratio 1.0 to a loopback Zipkin collector, one span per request arrives, from
  every worker (each answer names the worker's pid), and no span is counted as dropped.

``--preload`` is the case where the app (its tracer provider, export thread and log file) is
built in gunicorn's master before the workers are forked.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_support import (
    ACCESS_LOGGER,
    CONNECTIONS,
    NS,
    REQUESTS,
    Server,
    SpanCollector,
    access_lines,
    base_sections,
    every_worker_answers,
    fresh_connection_get,
    gunicorn_command,
    log_lines,
    run_load,
    sample_sum,
    scrape,
    serve_command,
    uvicorn_command,
    write_app,
)

pytestmark = pytest.mark.reliability

LOAD_TIMEOUT = 60 + REQUESTS / 100
"""Seconds a load run may take: far more than it needs, at the slowest this machine was seen."""

CASES: dict[str, tuple[Callable[[int], list[str]], int, bool]] = {
    "uvicorn-1-worker": (lambda port: uvicorn_command(port), 1, False),
    "serve-4-workers": (lambda port: serve_command(port, 4), 4, False),
    "gunicorn-2-uvicorn-workers": (lambda port: gunicorn_command(port, 2), 2, True),
    "gunicorn-2-uvicorn-workers-preload": (lambda port: gunicorn_command(port, 2, "--preload"), 2, True),
}
"""Each server: its command, its number of workers, and whether the test names the metrics folder
(gunicorn needs ``$PROMETHEUS_MULTIPROC_DIR``; ``serve --workers`` makes its own)."""


@pytest.mark.timeout(120 + 4 * LOAD_TIMEOUT)
@pytest.mark.parametrize("case", CASES)
def test_every_request_is_answered_logged_counted_and_traced_once(
    tmp_path: Path, collector: SpanCollector, case: str
) -> None:
    command, workers, names_metrics_dir = CASES[case]
    write_app(tmp_path, base_sections(tmp_path, collector.endpoint))
    env = {}
    if names_metrics_dir:
        (tmp_path / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    server = Server(tmp_path, command, env=env)
    try:
        server.wait_up()
        load = run_load(server.port, REQUESTS, connections=CONNECTIONS, timeout=LOAD_TIMEOUT)
        assert load.errors == [], load.errors[:10]
        assert load.statuses == {200: REQUESTS}
        answers = {answer.correlation_id: answer.body.decode() for answer in load.answers}
        pids = set(answers.values())
        extra = every_worker_answers(server, workers, pids)
        sent = REQUESTS + len(extra)
        exposition = scrape(server.port)
    finally:
        code = server.stop()
    # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is its clean exit.
    assert code in (0, -signal.SIGTERM), server.stderr()
    print(f"{case}: {REQUESTS} requests in {load.seconds:.1f} s ({REQUESTS / load.seconds:.0f}/s), {workers} workers")

    # The log: one access line per request, each with the id its response carried.
    lines = [line for line in access_lines(tmp_path / "app.log") if line["path"].startswith("/load/")]
    by_path = Counter(line["path"] for line in lines)
    assert len(lines) == sent, f"{len(lines)} access lines for {sent} requests"
    assert set(by_path.values()) == {1}, [path for path, n in by_path.items() if n > 1][:10]
    ids = [line["correlation_id"] for line in lines]
    assert len(set(ids)) == sent
    assert set(ids) == set(answers) | set(extra)
    assert {line["status"] for line in lines} == {200}

    # The metrics: exact across workers.
    assert sample_sum(exposition, f"{NS}_http_requests_total", endpoint="/load/{n}") == sent
    assert sample_sum(exposition, f"{NS}_http_requests_total", endpoint="/load/{n}", status="200") == sent
    assert sample_sum(exposition, f"{NS}_tracing_spans_dropped_total") == 0

    # The traces: every request's span, from every worker (flushed at shutdown at the latest).
    spans = collector.correlation_ids()
    assert len(spans) == sent, f"{len(spans)} spans for {sent} requests"
    assert set(spans) == set(answers) | set(extra)
    for pid in pids:
        served = {cid for cid, who in answers.items() if who == pid}
        assert served <= set(spans), f"worker {pid}: {len(served - set(spans))} spans missing"


SERVER_LINES_CASES = list(CASES)


@pytest.mark.parametrize("case", SERVER_LINES_CASES)
def test_the_servers_own_lines_come_out_as_json_once(tmp_path: Path, case: str) -> None:
    """uvicorn's warning about a request it cannot parse is a JSON line; its report of an exception
    the access line carries already is left out; nothing goes to stderr as plain text."""
    command, _, names_metrics_dir = CASES[case]
    write_app(tmp_path, base_sections(tmp_path, None))
    env = {}
    if names_metrics_dir:
        (tmp_path / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    server = Server(tmp_path, command, env=env)
    try:
        server.wait_up()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 400 ")
        assert fresh_connection_get(server.port, "/boom").status == 500
        time.sleep(0.5)
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM), server.stderr()
    lines = log_lines(tmp_path / "app.log")
    assert [line["level"] for line in lines if line["message"] == "Invalid HTTP request received."] == ["WARNING"]
    assert [line["logger"] for line in lines if "failed before the response" in json.dumps(line)] == [ACCESS_LOGGER]
    for plain in ("Invalid HTTP request received.", "Traceback", "Exception in ASGI application"):
        assert plain not in server.stderr(), server.stderr()
