"""The core checks against real things on this machine: an HTTP server, TCP ports, the disk, this process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from health_fixtures import Blackhole, blackhole_fixture  # noqa: F401 - pytest fixtures

from ops_observe.health import HealthCheck, ServiceUnavailable, ServiceWarning, UnexpectedResult
from ops_observe.health.checks import DiskCheck, HttpCheck, MemoryCheck, TcpCheck


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = int(self.path.strip("/") or 200)
        body = b'{"status": "UP"}'
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def outcome(check: HealthCheck) -> tuple[str, Any]:
    """("pass", details) or (the error class name, its message), running a sync check directly."""
    try:
        result = check.check()
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return "pass", result
    except (ServiceUnavailable, UnexpectedResult, ServiceWarning) as exc:
        return type(exc).__name__, exc.message


@pytest.mark.parametrize(
    ("path", "options", "expected"),
    [
        ("/200", {}, ("pass", {"status_code": 200})),
        ("/204", {"expected_status": [200, 204]}, ("pass", {"status_code": 204})),
        ("/500", {}, ("UnexpectedResult", "answered 500, expected 200")),
        ("/200", {"contains": "UP"}, ("pass", {"status_code": 200})),
        ("/200", {"contains": "DOWN"}, ("UnexpectedResult", "the body does not contain 'DOWN'")),
    ],
)
def test_http(http_server: str, path: str, options: dict[str, Any], expected: tuple[str, Any]) -> None:
    assert outcome(HttpCheck(url=http_server + path, timeout=2, **options)) == expected


def test_http_refused_and_blackholed(blackhole: Blackhole) -> None:
    kind, message = outcome(HttpCheck(url="http://127.0.0.1:1/", timeout=1))
    assert kind == "ServiceUnavailable" and message.startswith("request failed: ConnectError")
    kind, message = outcome(HttpCheck(url=f"http://127.0.0.1:{blackhole.port}/", timeout=0.3))
    assert (kind, message) == ("ServiceUnavailable", "no answer within 0.3 s (ReadTimeout)")


def test_tcp(http_server: str, blackhole: Blackhole) -> None:
    port = int(http_server.rsplit(":", 1)[1])
    assert outcome(TcpCheck(host="127.0.0.1", port=port)) == ("pass", {"address": f"127.0.0.1:{port}"})
    talk = TcpCheck(host="127.0.0.1", port=port, send="GET /200 HTTP/1.0\r\n\r\n", expect="HTTP/1.0 200")
    assert outcome(talk)[0] == "pass"
    wrong = TcpCheck(host="127.0.0.1", port=port, send="GET /500 HTTP/1.0\r\n\r\n", expect="HTTP/1.0 200")
    assert outcome(wrong)[0] == "UnexpectedResult"
    assert outcome(TcpCheck(host="127.0.0.1", port=1))[0] == "ServiceUnavailable"
    silent = TcpCheck(host="127.0.0.1", port=blackhole.port, expect="+PONG", timeout=0.3)
    assert outcome(silent) == ("ServiceUnavailable", f"127.0.0.1:{blackhole.port} accepted but did not answer")


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"min_free_percent": 0, "warn_free_percent": None}, "pass"),
        ({"min_free_percent": 0, "warn_free_percent": 100}, "ServiceWarning"),
        ({"min_free_percent": 100}, "ServiceUnavailable"),
        ({"min_free_percent": 0, "min_free_mb": 1e12}, "ServiceUnavailable"),
        ({"path": "/no/such/dir"}, "ServiceUnavailable"),
    ],
)
def test_disk(options: dict[str, Any], kind: str) -> None:
    assert outcome(DiskCheck(**options))[0] == kind


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"max_rss_mb": 1e6}, "pass"),
        ({"max_rss_mb": 1e6, "warn_rss_mb": 1}, "ServiceWarning"),
        ({"max_rss_mb": 1}, "ServiceUnavailable"),
    ],
)
def test_memory(options: dict[str, Any], kind: str) -> None:
    assert outcome(MemoryCheck(**options))[0] == kind


@pytest.mark.parametrize(
    ("cls", "options", "fragment"),
    [
        (HttpCheck, {"url": "localhost:80"}, "url must start with http://"),
        (TcpCheck, {"host": "h", "port": 0}, "port must be between 1 and 65535"),
        (DiskCheck, {"min_free_percent": 150}, "min_free_percent must be between 0 and 100"),
        (MemoryCheck, {"max_rss_mb": 0}, "max_rss_mb must be greater than 0"),
    ],
)
def test_constructors_refuse_bad_values(cls: type, options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        cls(**options)
