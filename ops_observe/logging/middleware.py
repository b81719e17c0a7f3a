"""The access log: one JSON line per HTTP request, written when the request ends.

Pure ASGI: the request's method, path, route, status, timings and sizes are read from its
:class:`ops_observe.request.RequestFacts` (shared with the other middlewares of the app), and the
line is written in ``finally``, so a crash is logged (status 500, with the exception as fields) and
still propagates (the server's own report of that exception is then left out of the JSON stream),
and a request whose client went away (a disconnect or a cancellation before the response
completed) is logged as 499 at WARNING, without error. ``lifespan`` and ``websocket`` scopes pass
straight through. The line is redacted by the JSON stream like any other line.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import unquote_plus

from loguru import logger as _loguru

from ops_observe.logging import setup as _setup
from ops_observe.logging.context import request_holder
from ops_observe.logging.request_info import client_address, user_id_of
from ops_observe.logging.stream import JsonStream
from ops_observe.request import (
    CLIENT_CLOSED_STATUS,
    OTHER_METHOD,
    STREAM_MEDIA_TYPES,
    RequestFacts,
    enter,
    media_types,
)
from ops_observe.root import Settings
from ops_observe.routes import is_django_app
from ops_observe.suite import Suite
from ops_observe.types import ASGIApp, Receive, Scope, Send

__all__ = ["ACCESS_KIND", "AccessLogMiddleware", "client_address", "from_settings"]

ACCESS_KIND = "access"
"""The ``kind`` of access-log lines."""
CANCELLED_STATUS = CLIENT_CLOSED_STATUS
"""Status logged for a request whose client went away before the response completed."""

_perf = time.perf_counter
_MEMO_LIMIT = 4096


class AccessLogMiddleware:
    """Writes one line per HTTP request: method, path, route, status, timings, sizes, client, user.

    Args:
        app: The ASGI app to wrap.
        logger_name: The ``logger`` key of the lines.
        exclude_paths: Paths (without query, after ``root_path``) never logged.
        query: ``"omit"`` leaves the query string out; ``"redact"`` adds a ``query`` field, decoded,
            whose secrets the JSON stream redacts (``?token=...`` -> ``token=[REDACTED:secret]``).
        slow_request_ms: At or over this duration the line gets ``slow: true`` and at least WARNING;
            0 disables. A long-lived stream (see ``stream_content_types``) is judged by its time to
            first byte instead.
        trusted_proxies: Addresses or networks (``"10.0.0.0/8"``) whose ``X-Forwarded-For`` /
            ``Forwarded`` headers are believed; the client is then the nearest untrusted hop.
        user_agent_max: Longest user agent kept, in characters.
        stream: Write to this JSON stream rather than the installed one (the default, read per
            request); with neither, lines go through ``loguru.logger``.
        stream_content_types: Media types of long-lived streams (``text/event-stream``...): a
            response of one of them sent in several parts is slow by its time to first byte.

    The ``user_id`` field comes, first found, from ``bind_request(user_id=...)``,
    ``scope["state"]["user_id"]`` (Starlette's ``request.state.user_id = ...``), or an authenticated
    ``scope["user"]`` (Starlette's ``AuthenticationMiddleware``: its ``identity``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger_name: str = "ops_observe.access",
        exclude_paths: Collection[str] = (),
        query: str = "omit",
        slow_request_ms: float = 1000.0,
        trusted_proxies: Sequence[str] = (),
        user_agent_max: int = 256,
        stream: JsonStream | None = None,
        stream_content_types: Collection[str] = STREAM_MEDIA_TYPES,
    ) -> None:
        if query not in ("omit", "redact"):
            raise ValueError(f"query must be 'omit' or 'redact', got {query!r}")
        self.app = app
        self.exclude = frozenset(exclude_paths)
        self.keep_query = query == "redact"
        self.slow_s = slow_request_ms / 1000.0 if slow_request_ms > 0 else float("inf")
        self.networks = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
        self.user_agent_max = user_agent_max
        self.agent_window = 2 * user_agent_max
        self.stream_types = media_types(stream_content_types)
        self.logger_name = logger_name
        self.stream = stream
        self._log = _loguru.bind(_ops_logger=logger_name, _ops_kind=ACCESS_KIND).opt(depth=1)
        self._trust_memo: dict[str, bool] = {}
        self.django = is_django_app(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts, receive, send = enter(scope, receive, send, self.django)
        # The app path, and the full path under a root path (the suite's endpoints are both).
        if facts.path in self.exclude or (facts.root_path and scope["path"] in self.exclude):
            await self.app(scope, receive, send)
            return
        holder: dict[str, Any] = {}
        token = request_holder.set(holder)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            facts.fail(exc)
            raise
        finally:
            try:
                self._write(scope, facts, holder)
            finally:
                request_holder.reset(token)

    def _write(self, scope: Scope, facts: RequestFacts, holder: dict[str, Any]) -> None:
        start = facts.start
        duration = _perf() - start
        status, route, exc = facts.outcome()
        first_byte = facts.first_byte
        # dict() over the header pairs runs in C; a repeated header keeps its last value, which
        # is all these fields need (the forwarded chain, which needs every value, is read apart).
        headers = dict(scope["headers"])
        raw_agent = headers.get(b"user-agent")
        # Twice the kept length is redacted, then cut: a secret at the edge is seen whole.
        user_agent = raw_agent[: self.agent_window].decode("latin-1") if raw_agent is not None else None
        length = headers.get(b"content-length")
        request_size = int(length) if length is not None and length.isdigit() else None
        client = scope.get("client")
        host = client[0] if client else None
        forwarded_host = False
        if self.networks and host is not None and (b"x-forwarded-for" in headers or b"forwarded" in headers):
            forwarded = [n + b"\x00" + v for n, v in scope["headers"] if n == b"x-forwarded-for" or n == b"forwarded"]
            host = client_address(host, forwarded, self._trusted)
            forwarded_host = True
        method = facts.raw_method
        path = scope["path"]
        query = None
        if self.keep_query:
            raw = scope.get("query_string")
            if raw:
                query = unquote_plus(raw.decode("latin-1"))
        stream = self.stream or _setup.active
        if stream is not None:
            # The line's fields are built clean here (known keys, redacted strings), so the
            # renderer writes them as they are: no per-field key checks on the hot path. What the
            # client wrote (path, method, user agent, query, forwarded host) is redacted; what is
            # safe by construction (numbers, a standard method, the app's route template, the
            # peer's address from the server) is not. A string seen clean before: one set look-up.
            renderer = stream.renderer
            clean = renderer.clean_strings
            text = renderer.text
            if path not in clean:
                path = text(path)
            if facts.method == OTHER_METHOD:  # whatever the client wrote
                method = text(method)
            if user_agent is not None:
                user_agent = (user_agent if user_agent in clean else text(user_agent))[: self.user_agent_max]
            if query is not None:
                query = text(query)
            if forwarded_host and host is not None:  # a header value: whatever the client wrote
                host = text(host)
        elif user_agent is not None:
            user_agent = user_agent[: self.user_agent_max]
        # Values the app supplied (any type) go through the renderer's full cleaning, not as trusted.
        extra: dict[str, Any] | None = None
        if "user_id" not in holder and ("state" in scope or "user" in scope):
            user_id = user_id_of(scope)
            if user_id is not None:
                extra = {"user_id": user_id}
        level = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        # A long-lived stream (an event stream) is as slow as its first byte: its whole duration
        # is how long it had news, not how slowly it answered (the metrics' rule for a stream).
        judged = duration
        if facts.streamed and first_byte and facts.is_stream(self.stream_types):
            judged = first_byte - start
        slow = judged >= self.slow_s
        if slow and level == "INFO":
            level = "WARNING"
        # A client that went away, or a cancellation, is no error: no error field, no traceback.
        if exc is not None:
            level = "ERROR"  # also when the app raised after its response had started
        message = f"{method} {path} {status}"
        if stream is not None:
            # The fields go straight into the line the stream began (no dict of their own).
            out: dict[str, Any] | None = stream.start(level, self.logger_name, message, ACCESS_KIND)
            if out is None:  # below the stream's level
                return
        else:
            out = {}
        out["method"] = method
        out["path"] = path
        out["status"] = status
        out["duration_ms"] = int(duration * 1_000_000) / 1000
        out["ttfb_ms"] = int((first_byte - start) * 1_000_000) / 1000 if first_byte else None
        out["request_size"] = request_size
        out["response_size"] = facts.response_size
        out["client"] = host
        out["user_agent"] = user_agent
        out["http_version"] = scope.get("http_version")
        if route is not None:
            out["route"] = route
        if query is not None:
            out["query"] = query
        if slow:
            out["slow"] = True
        if exc is not None:
            out["error"] = type(exc).__name__
        if stream is not None:
            stream.finish(out, extra, exc)
            error = facts.error  # the server error, or the cancellation of a client gone (a 499)
            if error is not None and stream.enabled(level):
                # Written here with the request's context (a server error with its traceback): the
                # server's own report of it ("Exception in ASGI application") is left out of the stream.
                _setup.mark_logged(error)
            return
        # No JSON stream installed (the middleware used on its own): through loguru, whose
        # message formatting needs the braces of the path doubled.
        message = message.replace("{", "{{").replace("}", "}}")
        self._log.opt(exception=exc).log(level, message, **out, **(extra or {}))

    def _trusted(self, host: str) -> bool:
        found = self._trust_memo.get(host)
        if found is None:
            try:
                address = ipaddress.ip_address(host)
                found = any(address in network for network in self.networks)
            except ValueError:
                found = False
            if len(self._trust_memo) < _MEMO_LIMIT:
                self._trust_memo[host] = found
        return found


def from_settings(app: ASGIApp, settings: Settings, *, suite: Suite | None = None) -> AccessLogMiddleware:
    """The ``logging`` entry point: the access log configured from ``[ops_observe.logging.access]``.

    Without ``exclude_paths`` in the settings, the suite's own endpoints (``/health``,
    ``/metrics``...) are excluded. Long-lived streams are those of ``metrics.stream_content_types``.
    """
    section = settings.logging.access
    exclude = section.exclude_paths
    if exclude is None:
        exclude = tuple(suite.endpoints) if suite is not None else ()
    return AccessLogMiddleware(
        app,
        exclude_paths=exclude,
        query=section.query,
        slow_request_ms=section.slow_request_ms,
        trusted_proxies=section.trusted_proxies,
        user_agent_max=section.user_agent_max,
        stream_content_types=_stream_types(settings),
    )


def _stream_types(settings: Settings) -> Collection[str]:
    # The metrics' setting, so that the access log and the latency histogram agree on what a
    # stream is; its default when the metrics section is not there (a build without the feature).
    metrics = getattr(settings, "metrics", None)
    return getattr(metrics, "stream_content_types", STREAM_MEDIA_TYPES)
