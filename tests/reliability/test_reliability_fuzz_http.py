"""Bad input at the HTTP level, from hypothesis, through a real uvicorn serving the default stack.

Methods, request targets (paths and query strings as raw bytes), header names and values, and
bodies go out on raw sockets, byte for byte, where httpx would refuse to send them. For every
request, whatever it holds:

- a clean answer: a status line with a status under 500 (uvicorn's own 400 for what its parser
  refuses, the app's 404/405, the suite's answers), within a timeout: never a hang;
- the server still answers afterwards: never a crash;
- response headers hold printable ASCII only, and the correlation header is either a valid
  incoming id, kept as it was, or a fresh one: never an echo of an invalid input;
- every line of the JSON log is a JSON object, and each request that reached the app has exactly
  one access line, one count and one span, found by the correlation id it was given.

One server per HTTP parser that uvicorn has here (h11 always, httptools when installed), for the
module. ``$OPS_OBSERVE_RELIABILITY_EXAMPLES`` sets the examples per property (default 100).
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import string
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import NS, Server, SpanCollector, base_sections, log_lines, sample_sum, scrape, write_app

pytestmark = pytest.mark.reliability

EXAMPLES = int(os.environ.get("OPS_OBSERVE_RELIABILITY_EXAMPLES", "100"))
TIMEOUT = 10.0
"""Seconds an answer may take before the request counts as hung."""

PARSERS = ["h11"]
try:
    import httptools  # noqa: F401  (only whether uvicorn can use it)

    PARSERS.append("httptools")
except ImportError:
    pass

SUITE_PATHS = ("/health", "/health/ready", "/health/detailed", "/livez", "/readyz", "/metrics")
VALID_ID = re.compile(rb"[A-Za-z0-9\-_.:=;+/]{1,128}")
"""An incoming correlation id the suite keeps (docs/correlation.md); anything else is replaced."""
FRESH_ID = re.compile(rb"[0-9a-f]{32}")
CORRELATION_HEADERS = (b"x-correlation-id", b"x-request-id")


# -- the server ---------------------------------------------------------------------------------


class LogTail:
    """Reads the lines appended to a JSON log since the last read (each one must be JSON)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.decode("utf-8").splitlines()


@dataclass
class Fuzzed:
    """The module's server and what the properties saw of it."""

    server: Server
    collector: SpanCollector
    log: Path
    tail: LogTail
    access: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Access lines by correlation id, read so far."""

    def read_log(self) -> None:
        import json

        for text in self.tail.new_lines():
            line = json.loads(text)
            assert isinstance(line, dict), text
            if line.get("logger") == "ops_observe.access":
                self.access.setdefault(line["correlation_id"], []).append(line)


@pytest.fixture(scope="module", params=PARSERS)
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    workdir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    collector = SpanCollector()
    write_app(workdir, base_sections(workdir, collector.endpoint, schedule_delay=0.05))
    server = Server(workdir, lambda port: [*_uvicorn(port), "--http", request.param])
    try:
        server.wait_up()
        yield Fuzzed(server, collector, workdir / "app.log", LogTail(workdir / "app.log"))
    finally:
        server.stop()
        collector.close()
    # Every line the server wrote, whatever it was sent, is a JSON object.
    log_lines(workdir / "app.log")


def _uvicorn(port: int) -> list[str]:
    from reliability_support import uvicorn_command

    return uvicorn_command(port)


# -- requests, byte for byte --------------------------------------------------------------------

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12).map(str.encode)
methods = (
    st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"get"]) | tokens
)
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
# Mostly what a parser takes in a request target (visible ASCII, percent-escapes of any bytes),
# sometimes raw bytes it may refuse (non-ASCII): both sides of the parser get their share.
target_bytes = (
    st.text(alphabet=VISIBLE, max_size=24).map(str.encode)
    | st.binary(max_size=16).map(lambda b: urllib.parse.quote_from_bytes(b, safe="").encode())
    | st.binary(max_size=16).map(lambda b: bytes(c for c in b if c > 0x20 and c != 0x7F))
)
tricky = st.sampled_from(
    [
        b"%",
        b"%zz",
        b"%00",
        b"%ff%fe",
        b"%c3%a9",
        b"\xc3\xa9",
        b"\xff",
        b"..",
        b"//",
        b"\\",
        b"\\x",
        b"\\u12",
        b"{}",
        b"{id}",
    ]
)
segments = st.lists(target_bytes | tricky | tokens, max_size=4).map(b"/".join)
app_paths = st.sampled_from([b"/load/", b"/beat", b"/upload", b"/nowhere/", b"/load/%7Bn%7D/"]).flatmap(
    lambda prefix: segments.map(lambda rest: prefix + rest)
)
suite_paths = st.sampled_from([p.encode() for p in SUITE_PATHS]).flatmap(
    lambda prefix: st.sampled_from([b"", b"/", b"/x", b"%2F"]).map(lambda rest: prefix + rest)
)
queries = st.lists(segments | tricky, max_size=3).map(b"&".join)
header_names = (
    st.sampled_from(
        [
            b"x-correlation-id",
            b"X-Request-ID",
            b"traceparent",
            b"tracestate",
            b"baggage",
            b"b3",
            b"user-agent",
            b"content-type",
            b"accept",
            b"authorization",
            b"x-api-key",
            b"x-forwarded-for",
            b"forwarded",
            b"cookie",
            b"x-real-ip",
            b"accept-encoding",
        ]
    )
    | tokens
)
clean_header_values = (
    st.text(
        alphabet=string.printable.replace("\r", "").replace("\n", "").replace("\x0b", "").replace("\x0c", ""),
        max_size=80,
    ).map(str.encode)
    | tricky
    | st.sampled_from([b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01", b"00-zz-zz-zz", b"application/openmetrics-text"])
)
raw_header_values = st.binary(max_size=80).map(lambda b: bytes(c for c in b if c not in b"\r\n"))
# Half the examples keep to what parsers take (and so reach the app), half send any byte.
headers = st.lists(st.tuples(header_names, clean_header_values), max_size=6) | st.lists(
    st.tuples(header_names, clean_header_values | raw_header_values), max_size=6
)
bodies = st.binary(max_size=300)


@st.composite
def well_formed_requests(
    draw: st.DrawFn, paths: st.SearchStrategy[bytes]
) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    """(method, target, the path, headers, body) of a request whose framing is right (its body
    length declared), whatever its bytes: it reaches the HTTP parser's far side or is refused."""
    method = draw(methods)
    path = draw(paths)
    query = draw(queries)
    target = path + (b"?" + query if query else b"")
    return method, target, path, draw(headers), draw(bodies)


def raw_request(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"content-length: %d" % len(body), b"connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    raw_head: bytes


def send(port: int, data: bytes) -> Response:
    """Send ``data`` and read the answer until the server closes (``connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        got = b""
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                pytest.fail(f"no answer within {TIMEOUT} s to {data[:300]!r}")
            if not chunk:
                break
            got += chunk
            if time.monotonic() > deadline:
                pytest.fail(f"the answer to {data[:300]!r} did not end within {TIMEOUT} s")
    head, sep, _ = got.partition(b"\r\n\r\n")
    assert sep, f"no complete answer to {data[:300]!r}: {got[:300]!r}"
    status_line, *header_lines = head.split(b"\r\n")
    assert re.fullmatch(rb"HTTP/1\.1 \d{3}( .*)?", status_line), status_line
    parsed = []
    for line in header_lines:
        name, colon, value = line.partition(b":")
        assert colon, f"a response header line without a colon: {line!r}"
        parsed.append((name.strip().lower(), value.strip()))
    return Response(int(status_line[9:12]), parsed, head)


def alive(fuzzed: Fuzzed) -> None:
    """The server still answers, and still runs."""
    assert fuzzed.server.process.poll() is None, fuzzed.server.stderr()
    assert httpx.get(fuzzed.server.url("/beat"), timeout=TIMEOUT).status_code == 200


def check_response(response: Response, sent_headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in response.headers:
        assert re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9a-z]+", name), f"response header name {name!r}"
        assert re.fullmatch(rb"[\x20-\x7e\t]*", value), f"response header {name!r}: {value!r}"
    ids = [value for name, value in response.headers if name == b"x-correlation-id"]
    if ids:
        [given_back] = ids
        candidates = {v for n, v in sent_headers if n.lower() in CORRELATION_HEADERS and VALID_ID.fullmatch(v)}
        assert given_back in candidates or FRESH_ID.fullmatch(given_back), (
            f"the correlation header echoes {given_back!r}, sent {sent_headers!r}"
        )


# -- the properties -----------------------------------------------------------------------------


@settings(max_examples=EXAMPLES)
@given(example=well_formed_requests(app_paths | suite_paths))
def test_any_request_gets_a_clean_answer_and_the_server_lives_on(fuzzed: Fuzzed, example: Any) -> None:
    method, target, _, sent_headers, body = example
    response = send(fuzzed.server.port, raw_request(method, target, sent_headers, body))
    assert response.status < 500, response.raw_head
    check_response(response, sent_headers)
    alive(fuzzed)
    fuzzed.read_log()  # every line so far is JSON


@settings(max_examples=EXAMPLES)
@given(
    raw=st.binary(max_size=200)
    | st.lists(
        st.binary(max_size=40) | tokens | st.sampled_from([b" ", b"\r\n", b"HTTP/1.1", b":", b"\n"]), max_size=12
    ).map(b"".join)
)
def test_garbage_on_the_wire_gets_a_400_or_nothing_and_the_server_lives_on(fuzzed: Fuzzed, raw: bytes) -> None:
    # Not a request at all: the parser answers 400 and closes, or waits for the rest of a request
    # that never comes, until the client goes. Either way the server lives on.
    with socket.create_connection(("127.0.0.1", fuzzed.server.port), timeout=TIMEOUT) as sock:
        sock.sendall(raw + b"\r\n\r\n")
        sock.settimeout(0.2)
        try:
            got = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            got = b""
    if got:
        assert re.match(rb"HTTP/1\.1 [1-4]\d\d ", got), got[:200]
    alive(fuzzed)


counter = itertools.count()


@settings(max_examples=EXAMPLES)
@given(example=well_formed_requests(app_paths))
def test_each_fuzzed_request_that_reaches_the_app_is_logged_counted_and_traced_once(
    fuzzed: Fuzzed, example: Any
) -> None:
    method, target, _, sent_headers, body = example
    cid = f"fuzz-{next(counter)}"
    # The request's own id wins over any correlation header the example holds.
    sent_headers = [(n, v) for n, v in sent_headers if n.lower() not in CORRELATION_HEADERS]
    sent_headers.append((b"x-correlation-id", cid.encode()))
    response = send(fuzzed.server.port, raw_request(method, target, sent_headers, body))
    assert response.status < 500, response.raw_head
    check_response(response, sent_headers)
    given_back = dict(response.headers).get(b"x-correlation-id")
    if given_back is None:
        return  # refused by the HTTP parser: it never reached the app
    assert given_back == cid.encode()
    deadline = time.monotonic() + TIMEOUT
    while cid not in fuzzed.access and time.monotonic() < deadline:
        time.sleep(0.01)
        fuzzed.read_log()
    lines = fuzzed.access.get(cid, [])
    assert len(lines) == 1, lines
    assert lines[0]["status"] == response.status


def test_the_counts_and_spans_of_the_fuzzed_requests_add_up(fuzzed: Fuzzed) -> None:
    """After the properties ran: one span per access line, and the request counter agrees."""
    # test_each_fuzzed_request... ran before this one (file order), with ids fuzz-0, fuzz-1...
    fuzzed.read_log()
    ids = {cid for cid in fuzzed.access if cid.startswith("fuzz-")}
    assert ids, "no fuzzed request reached the app"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        traced = [c for c in fuzzed.collector.correlation_ids() if c.startswith("fuzz-")]
        if len(traced) >= len(ids):
            break
        time.sleep(0.1)
    assert sorted(traced) == sorted(ids)
    text = scrape(fuzzed.server.port)
    app_requests = sample_sum(text, f"{NS}_http_requests_total") - sum(
        sample_sum(text, f"{NS}_http_requests_total", endpoint=path) for path in SUITE_PATHS
    )
    fuzzed.read_log()
    logged = sum(len(lines) for lines in fuzzed.access.values())
    assert app_requests == logged
