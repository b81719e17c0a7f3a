"""The server span's attributes, as opentelemetry-instrumentation-asgi records them, computed cheaply.

The stock ``collect_request_attributes`` decodes every header three times over, parses the URL
twice to redact it, and calls a helper per attribute: it was a fifth of the sampled request's
tracing cost. :class:`RequestAttributes` builds the same dictionary in one pass over the headers
for the plain request (a simple host, an ``http``/``https`` URL with nothing the stock redaction
would change) and hands every other request to the stock function, so the result is the stock's
in every case. The response's attributes (the stock ``set_status_code``) are kept per status.
``tests/tracing/test_tracing_attributes.py`` checks both against the stock functions for each
semantic conventions mode (``OTEL_SEMCONV_STABILITY_OPT_IN``: old, stable, both).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from opentelemetry.instrumentation._semconv import _report_new, _report_old, _StabilityMode
from opentelemetry.instrumentation.asgi import _decode_header_item, collect_request_attributes
from opentelemetry.instrumentation.utils import http_status_to_status_code
from opentelemetry.trace import StatusCode
from opentelemetry.util.http import PARAMS_TO_REDACT, detect_synthetic_user_agent, sanitize_method

__all__ = ["RequestAttributes"]

# A host the stock URL redaction leaves as it is: no credentials, nothing urlparse reads otherwise.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]*(:[0-9]*)?")
_SCHEMES = frozenset({"http", "https"})
# The request's facts and their attribute names in the old and the new (stable) conventions.
_NAMES_BY_FACT: dict[str, tuple[str | None, str | None]] = {
    "scheme": ("http.scheme", "url.scheme"),
    "host": ("http.host", "server.address"),
    "port": ("net.host.port", "server.port"),
    "flavor": ("http.flavor", "network.protocol.version"),
    "path": ("http.target", "url.path"),
    "query": (None, "url.query"),
    "url": ("http.url", None),
    "method_original": (None, "http.request.method_original"),
    "method": ("http.method", "http.request.method"),
    "server_name": ("http.server_name", None),
    "user_agent": ("http.user_agent", "user_agent.original"),
    "user_agent_synthetic": ("user_agent.synthetic.type", "user_agent.synthetic.type"),
    "ip": ("net.peer.ip", "client.address"),
    "client_port": ("net.peer.port", "client.port"),
}
_KNOWN_METHODS = {m: m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")}


class RequestAttributes:
    """``collect_request_attributes(scope, mode)``, cheaper; call it with a scope the stock function can read."""

    __slots__ = ("_statuses", "keys", "mode", "new", "old")

    def __init__(self, mode: _StabilityMode) -> None:
        self.mode = mode
        self.old = _report_old(mode)
        self.new = _report_new(mode)
        # Each fact's attribute names in this mode, in the stock order (old name first).
        self.keys = {
            fact: tuple(key for key, on in zip(names, (self.old, self.new), strict=True) if key and on)
            for fact, names in _NAMES_BY_FACT.items()
        }
        self._statuses: dict[int, tuple[dict[str, Any], StatusCode]] = {}

    def response(self, status: int) -> tuple[dict[str, Any], StatusCode]:
        """What the stock ``set_status_code(span, status)`` records on a server span: its attributes
        (a shared dictionary: copy it to change it) and the span's status code."""
        found = self._statuses.get(status)
        if found is None:
            code = http_status_to_status_code(status, server_span=True)
            attributes: dict[str, Any] = {}
            if self.old:
                attributes["http.status_code"] = status
            if self.new:
                attributes["http.response.status_code"] = status
                if code is StatusCode.ERROR:
                    attributes["error.type"] = str(status)
            found = (attributes, code)
            if 100 <= status < 600:  # the statuses HTTP has: a bounded cache
                self._statuses[status] = found
        return found

    def __call__(self, scope: Any) -> dict[str, Any]:
        result = self._plain(scope)
        if result is None:
            result = collect_request_attributes(scope, self.mode)  # type: ignore[no-untyped-call]
        return result

    def _plain(self, scope: Any) -> dict[str, Any] | None:
        """The attributes of a plain request, or ``None`` for the stock function to compute."""
        server = scope.get("server") or ("0.0.0.0", 80)
        server_name, port = server[0], server[1]
        scheme = scope.get("scheme")
        path = scope.get("path")
        if (
            not isinstance(server_name, str)
            or type(port) is not int
            or scheme not in _SCHEMES
            or not isinstance(path, str)
            or (path and path[0] != "/")
        ):
            return None
        hosts: list[str] = []
        user_agent: str | None = None
        for name, value in scope.get("headers") or ():
            if name == b"host" or name == b"user-agent" or (not name.islower() and name.lower() in _NAMES):
                if name.lower() == b"host":
                    hosts.append(_decode_header_item(value))  # type: ignore[no-untyped-call]
                elif user_agent is None:
                    user_agent = _decode_header_item(value)  # type: ignore[no-untyped-call]
        server_host = server_name if port == 80 else f"{server_name}:{port}"
        url_host = hosts[0] if hosts else server_host
        if not _PLAIN_HOST.fullmatch(url_host):
            return None
        url = f"{scheme}://{url_host}{path}"
        query = scope.get("query_string")
        if query:
            if isinstance(query, bytes):
                query = query.decode("utf8")
            url += "?" + unquote(query)
        _, mark, url_query = url.partition("?")
        if (mark and ("%" in url_query or any(param in url_query for param in PARAMS_TO_REDACT))) or (
            "\t" in url or "\r" in url or "\n" in url  # urlparse drops these, and may then find a parameter
        ):
            return None  # the stock redaction may change it

        method = scope.get("method", "")
        original = method.strip() if method else ""
        # A known method is its own label whatever the environment says (no lookup of it then).
        normalized = (_KNOWN_METHODS.get(method) or sanitize_method(method).strip()) if method else ""
        client = scope.get("client")
        ip, client_port = (client[0], client[1]) if client is not None else (None, None)
        if client_port:
            try:
                client_port = int(client_port)
            except (ValueError, TypeError):
                client_port = None
        flavor = scope.get("http_version")
        values = (
            ("scheme", scheme),
            ("host", server_host),
            ("port", port),
            ("flavor", flavor),
            ("path", path),
            ("query", query if path else None),
            ("url", url),
            ("method_original", original if original != normalized else None),
            ("method", normalized),
            ("user_agent", user_agent),
            ("user_agent_synthetic", detect_synthetic_user_agent(user_agent) if user_agent else None),
            ("ip", ip),
            ("client_port", client_port),
        )
        keys = self.keys
        result: dict[str, Any] = {}
        for fact, value in values:
            if value:
                for key in keys[fact]:  # the mode's keys for it: the old name, the new, or both
                    result[key] = value
        if hosts:  # even empty Host headers: the stock function joins what it found
            for key in keys["server_name"]:
                result[key] = ",".join(hosts)
        return result


_NAMES = frozenset({b"host", b"user-agent"})
