"""Helpers of the tracing middleware: reading headers, handing over the parent, cleaning query strings."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from ops_observe.secrets import is_secret_key
from ops_observe.tracing.sampling import handoff

__all__ = [
    "REDACTED",
    "HeadersGetter",
    "ServerParentTracer",
    "clean_query",
    "clean_url_attributes",
    "headers_getter",
    "printable_query",
    "readable_scope",
    "stock_can_read",
    "utf8_query",
]

REDACTED = "REDACTED"
_SEPARATORS = re.compile(r"([&;])")


class HeadersGetter(Getter[Sequence[tuple[bytes, bytes]]]):
    """Reads propagation headers straight from the ASGI header list (names are lowercase there)."""

    def get(self, carrier: Sequence[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for header, value in carrier if header == name]
        return found or None

    def keys(self, carrier: Sequence[tuple[bytes, bytes]]) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


headers_getter = HeadersGetter()


class ServerParentTracer(trace.Tracer):
    """Hands the stock middleware's server span the parent context our propagator extracted.

    The stock middleware extracts with the process-global propagator; ours is per app (B3 or W3C
    by setting), so the server span's parent comes from the hand-off cell instead.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> trace.Span:
        cell = handoff.get()
        if cell is not None and cell.context is not None:
            context, cell.context = cell.context, None
        return self._tracer.start_span(name, context, *args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer.start_as_current_span(*args, **kwargs)


def utf8_query(query: bytes) -> bool:
    """True when the stock middleware can decode ``query`` (it decodes UTF-8 strictly, and raises)."""
    if query.isascii():
        return True
    try:
        query.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header_decodable(raw: bytes) -> bool:
    # The stock middleware decodes header names and values as UTF-8, else as "unicode_escape",
    # which raises (or warns) on a backslash escape it does not know: a client could crash it
    # with one header value. Without a backslash, "unicode_escape" is plain Latin-1: always fine.
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return b"\\" not in raw
    return True


def stock_can_read(scope: Any) -> bool:
    """True when the stock middleware can read this request without raising on its bytes."""
    query = scope.get("query_string")
    if query and not utf8_query(query):
        return False
    for name, value in scope.get("headers") or ():
        if not (name.isascii() and value.isascii()) and not (_header_decodable(name) and _header_decodable(value)):
            return False
    return True


def printable_query(query: bytes) -> bytes:
    """``query`` with every byte that is not printable ASCII percent-encoded, for recording only."""
    return quote(query, safe="/?:@&=+$,;%!~*'()[]").encode("ascii")


def readable_scope(scope: Any) -> Any:
    """``scope`` itself, or a copy whose unreadable query and header bytes are percent-encoded."""
    if stock_can_read(scope):
        return scope
    query = scope.get("query_string") or b""
    headers = [
        (
            name if _header_decodable(name) else printable_query(name),
            value if _header_decodable(value) else printable_query(value),
        )
        for name, value in scope.get("headers") or ()
    ]
    return {**scope, "query_string": query if utf8_query(query) else printable_query(query), "headers": headers}


def clean_query(query: str, extra_words: frozenset[str] = frozenset()) -> str | None:
    """``query`` with the value of each secret parameter replaced by ``REDACTED``; ``None`` when
    there is none to replace.

    A parameter is secret when its name, percent-decoded, is a secret key for the one vocabulary
    (:func:`ops_observe.secrets.is_secret_key`, with ``extra_words`` from
    :func:`ops_observe.secrets.secret_words`): the same words that mask settings and redact logs.

    Both ``&`` and ``;`` count as separators, so that no reading of the query leaves a value behind.
    """
    parts = _SEPARATORS.split(query)
    changed = False
    for i in range(0, len(parts), 2):
        name, eq, _ = parts[i].partition("=")
        if eq and is_secret_key(unquote_plus(name).strip(), extra_words):
            parts[i] = f"{name}={REDACTED}"
            changed = True
    return "".join(parts) if changed else None


def clean_url_attributes(attributes: Mapping[str, Any], cleaned: str) -> dict[str, str]:
    """The URL attributes of ``attributes`` (as the stock middleware records them) with the
    ``cleaned`` query in place of the one they hold: only those that change."""
    changed: dict[str, str] = {}
    for key in ("http.url", "url.full"):
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            base = value.split("?", 1)[0]
            # The stock http.url holds the percent-decoded query; keep that form.
            changed[key] = f"{base}?{unquote(cleaned) if key == 'http.url' else cleaned}"
    if isinstance(attributes.get("url.query"), str):
        changed["url.query"] = cleaned
    target = attributes.get("http.target")
    if isinstance(target, str) and "?" in target:
        changed["http.target"] = f"{target.split('?', 1)[0]}?{cleaned}"
    return changed
