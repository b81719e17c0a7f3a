"""One loguru record -> one line of JSON: the keys, redaction, truncation and exceptions.

The renderer runs inside loguru's handler, in the thread that logged (also with ``enqueue``: loguru
formats before it queues), so the context variables read here are the caller's.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace

from ops_observe.correlation import correlation_id
from ops_observe.logging.context import context_fields, request_holder
from ops_observe.redaction import NULL_REDACTOR, Redactor
from ops_observe.tracing.active import INVALID as _INVALID
from ops_observe.tracing.active import SPAN_KEY, current_context
from ops_observe.tracing.middleware import request_ids

__all__ = ["BASE_KEYS", "FORMAT", "JsonRenderer", "PRIVATE_PREFIX"]

PRIVATE_PREFIX = "_ops_"
"""Extra keys starting so are the suite's own plumbing (logger name, record kind) and are not fields."""

FORMAT = "{extra[_ops_json]}\n"
"""What :meth:`JsonRenderer.format` returns to loguru: the line it stored in the record."""

BASE_KEYS = frozenset(
    {"timestamp", "level", "logger", "message", "correlation_id", "trace_id", "span_id", "file", "line", "function"}
    | {"exception", "truncated", "kind", "service"}
)
"""Keys the renderer writes itself; a field with one of these names is written as ``field_<name>``."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_ascii_dumps: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode


def _orjson_dumps() -> Callable[[Any], str] | None:
    # orjson, when installed, is a pure speed-up (a third of the cost of a line): same output as
    # the stdlib encoder (compact, UTF-8). It refuses lone surrogates and ints over 64 bits; such
    # a line falls back to the stdlib encoder with \u escapes.
    try:
        import orjson
    except ImportError:
        return None
    encode = orjson.dumps

    def dumps(obj: Any) -> str:
        try:
            return encode(obj).decode()
        except TypeError:
            return _ascii_dumps(obj)

    return dumps


def _orjson_bytes() -> Callable[[Any], bytes] | None:
    try:
        import orjson
    except ImportError:
        return None
    return orjson.dumps


def encoders() -> dict[str, Callable[[Any], str]]:
    """The JSON encoders a renderer can use by name: ``"stdlib"``, and ``"orjson"`` when installed."""
    found: dict[str, Callable[[Any], str]] = {"stdlib": _ascii_dumps}
    fast = _orjson_dumps()
    if fast is not None:
        found["orjson"] = fast
    return found


_ENCODERS = encoders()
_request_ids = request_ids.get  # the request's ids when tracing attaches no span (nothing recorded)
# The fraction of a timestamp from two look-ups: ``.123`` and ``456`` for 123456 µs, a third of
# the cost of formatting it (``f"{micro:06d}"``) on every line.
_MILLIS = tuple(f".{n:03d}" for n in range(1000))
_MICROS = tuple(f"{n:03d}" for n in range(1000))
TRUNCATED = "…[truncated]"
TRUNCATED_HEAD = "[truncated]…"
SECRET = "[REDACTED:secret]"


class JsonRenderer:
    """Renders loguru records as JSON lines.

    Args:
        redactor: Applied to the message, every string field, dict keys naming secrets and exceptions.
        max_field_length: Longest string kept (message included); longer ones end in ``…[truncated]``
            and the line gets ``"truncated": true``.
        max_line_length: Longest line; past it, fields are dropped (named in ``dropped_fields``).
        source: Write ``file``, ``line`` and ``function``.
        service: The ``service`` key of every line, or ``None`` to leave it out.
        encoder: ``"orjson"`` (the default when installed) or ``"stdlib"``; same output.
    """

    def __init__(
        self,
        *,
        redactor: Redactor = NULL_REDACTOR,
        max_field_length: int = 4096,
        max_line_length: int = 65536,
        source: bool = True,
        service: str | None = None,
        encoder: str | None = None,
    ) -> None:
        available = _ENCODERS
        name = encoder or ("orjson" if "orjson" in available else "stdlib")
        if name not in available:
            raise ValueError(f"JSON encoder {name!r} is not available; choose from {sorted(available)}")
        self.encoder = name
        self._dumps: Callable[[Any], str] = available[name]
        self._raw_dumps: Callable[[Any], bytes] | None = _orjson_bytes() if name == "orjson" else None
        self.redactor = redactor
        self.redact = redactor is not NULL_REDACTOR
        # Strings the redactor has seen clean (shared with it): one set look-up for a repeated value.
        self.clean_strings: set[str] | frozenset[str] = redactor.clean_strings if self.redact else frozenset()
        self.max_field = max_field_length
        self.max_line = max_line_length
        self.source = source
        self.service = service
        # The seconds part of the timestamp changes once a second: remember the last one rendered,
        # as one tuple, so that a thread never pairs one second with another's prefix.
        self._last_second: tuple[int, str] = (-1, "")

    # -- loguru hooks -----------------------------------------------------------------------------

    def format(self, record: Any) -> str:
        """loguru's ``format=`` callable: stores the JSON line in the record, returns :data:`FORMAT`."""
        record["extra"]["_ops_json"] = self.render(record)
        return FORMAT

    def render(self, record: Any) -> str:
        """The JSON line (without the newline) of one loguru record."""
        extra = record["extra"]
        delta = record["time"] - _EPOCH
        source = extra.get("_ops_source")
        if source is None and self.source:
            source = (record["file"].name, record["line"], record["function"])
        exception = record["exception"]
        return self.line(
            delta.days * 86400 + delta.seconds,
            delta.microseconds,
            record["level"].name,
            extra.get("_ops_logger") or record["name"],
            record["message"],
            extra,
            source,
            (exception.type, exception.value, exception.traceback) if exception is not None else None,
            extra.get("_ops_kind"),
        )

    # -- rendering --------------------------------------------------------------------------------

    def timestamp(self, second: int, micro: int) -> str:
        """RFC 3339 in UTC with microseconds: ``2026-11-27T15:04:05.123456Z``."""
        last_second, prefix = self._last_second
        if second != last_second:
            prefix = self._second(second)
        return f"{prefix}{_MILLIS[micro // 1000]}{_MICROS[micro % 1000]}Z"

    def _second(self, second: int) -> str:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._last_second = (second, prefix)
        return prefix

    def line(
        self,
        second: int,
        micro: int,
        level: str,
        logger: str,
        message: Any,
        fields: Mapping[str, Any],
        source: tuple[str, int, str] | None,
        exc_info: tuple[Any, Any, Any] | None = None,
        kind: str | None = None,
    ) -> str:
        """The JSON line (without the newline) of one record; never raises.

        Args:
            second: Seconds since the epoch, UTC. micro: The microseconds within that second.
            level: Level name. logger: The ``logger`` key. message: The message (made a string).
            fields: Keyword fields, after the context's (keys starting ``_ops_`` are skipped).
            source: ``(file, line, function)``, or ``None`` to leave them out.
            exc_info: ``(type, value, traceback)`` of an exception to add as ``exception``.
            kind: ``access``, ``business_event``... or ``None`` for an application line.
        """
        try:
            flags: list[str] = []
            text = self._string(message if type(message) is str else str(message), flags)
            out = self.head(second, micro, level, logger, text, kind)
            if source is not None and self.source:
                out["file"], out["line"], out["function"] = source
            return self.tail(out, fields, exc_info, flags)
        except Exception as exc:  # a log call must never raise because of what it was given
            return self.unrenderable(self.timestamp(second, micro), level, logger, exc)

    def head(self, second: int, micro: int, level: str, logger: str, message: str, kind: str | None) -> dict[str, Any]:
        """The first keys of a line, in order: ``timestamp`` to ``span_id`` (``message`` as given:
        through :meth:`text` already). Fields go in next, then :meth:`tail` finishes the line: a
        caller that builds its fields clean (the access log) adds them here, with no dict of them
        of its own per line. Raises only on a broken span of another library (callers catch)."""
        last_second, prefix = self._last_second  # self.timestamp(), inline: once per line
        if second != last_second:
            prefix = self._second(second)
        out: dict[str, Any] = {
            "timestamp": f"{prefix}{_MILLIS[micro // 1000]}{_MICROS[micro % 1000]}Z",
            "level": level,
            "logger": logger,
            "message": message,
            "correlation_id": correlation_id.get(),
        }
        if kind is not None:
            out["kind"] = kind
        if self.service is not None:
            out["service"] = self.service
        # The current span's ids, else the request's (tracing that records nothing), else none;
        # tracing.active's one-step read of the span, inline: this runs on every line.
        span = current_context().get(SPAN_KEY) if SPAN_KEY else trace.get_current_span()
        # (None first: isinstance against an ABC is not cheap)
        context: Any = span.get_span_context() if span is not None and isinstance(span, trace.Span) else _INVALID
        if context is _INVALID or not context.is_valid:
            context = _request_ids()
            if context is _INVALID or not context.is_valid:
                context = None
        if context is not None:
            out["trace_id"] = format(context.trace_id, "032x")
            out["span_id"] = format(context.span_id, "016x")
        return out

    def tail(
        self,
        out: dict[str, Any],
        fields: Mapping[str, Any] | None,
        exc_info: tuple[Any, Any, Any] | None,
        flags: list[str],
    ) -> str:
        """The line (without the newline) of :meth:`head`'s ``out``, its fields added: the log
        context's, the request's (``bind_request``), then ``fields``, each cleaned (keys starting
        ``_ops_`` skipped); then ``exception`` and ``truncated`` (``flags``: what was cut so far).
        May raise on what it was given (callers catch: see :meth:`unrenderable`)."""
        ctx = context_fields.get()
        if ctx:
            self._fields(ctx, out, flags)
        holder = request_holder.get()
        if holder:
            self._fields(holder, out, flags)
        if fields:
            self._fields(fields, out, flags)
        if exc_info is not None and exc_info[0] is not None:
            out["exception"] = self.exception(exc_info[0], exc_info[1], exc_info[2], flags)
        if flags:
            out["truncated"] = True
        raw = self._raw_dumps
        if raw is None:
            line = self._dumps(out)
        else:  # orjson, called here rather than through the wrapper: one frame less a line
            try:
                line = raw(out).decode()
            except TypeError:
                line = _ascii_dumps(out)
        if len(line) > self.max_line:
            line = self._shrink(out)
        return line

    def unrenderable(self, timestamp: Any, level: Any, logger: Any, error: Exception) -> str:
        """The line written instead of one whose rendering raised: when and where, and why not."""
        return _ascii_dumps(
            {
                "timestamp": str(timestamp),
                "level": str(level),
                "logger": str(logger),
                "message": "log record could not be rendered",
                "render_error": type(error).__name__,
                "correlation_id": correlation_id.get(),
            }
        )

    def _fields(self, fields: Mapping[str, Any], out: dict[str, Any], flags: list[str]) -> None:
        # The hot loop of every line: the common value types are handled inline, and the key memo
        # of the redactor is read directly, to spare a call per field.
        redact = self.redact
        secret_memo = self.redactor.key_memo
        is_secret = self.redactor.is_secret_key
        string = self._string
        for key, value in fields.items():
            if key[:5] == PRIVATE_PREFIX:
                continue
            if key in BASE_KEYS:
                key = "field_" + key
            kind = type(value)
            if redact:
                secret = secret_memo.get(key)
                if secret is None:
                    secret = is_secret(key)
                if secret and not _blank(value):
                    out[key] = SECRET
                    continue
            if kind is str:
                out[key] = string(value, flags)
            elif (kind is int and -(10**12) < value < 10**12) or value is None or kind is bool:
                out[key] = value
            else:
                out[key] = self.clean(value, flags, 0)

    def text(self, value: str) -> str:
        """``value`` redacted and bounded as a field of a line would be: for callers that build
        trusted fields (the access log) and for anything else the suite emits as text."""
        return self._string(value, [])

    def clean(self, value: Any, flags: list[str], depth: int) -> Any:
        """``value`` as plain JSON data: redacted, strings bounded, no NaN, keys as strings."""
        kind = type(value)
        if kind is str:
            return self._string(value, flags)
        if kind is int:
            return self.redactor.value(value) if self.redact and value >= 10**12 else value
        if value is None or kind is bool:
            return value
        if kind is float:
            return value if math.isfinite(value) else str(value)
        if depth >= 8:
            flags.append("depth")
            return "[truncated:depth]"
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            redact = self.redact
            for i, (k, v) in enumerate(value.items()):
                if i >= 256:
                    flags.append("items")
                    out["…"] = f"{len(value) - i} more"
                    break
                key = k if type(k) is str else str(k)
                if redact and self.redactor.is_secret_key(key) and not _blank(v):
                    out[key] = "[REDACTED:secret]"
                else:
                    out[key] = self.clean(v, flags, depth + 1)
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            items = []
            for i, v in enumerate(value):
                if i >= 256:
                    flags.append("items")
                    items.append(f"… {len(value) - i} more")
                    break
                items.append(self.clean(v, flags, depth + 1))
            return items
        if isinstance(value, (bytes, bytearray, memoryview)):
            # Non-UTF-8 bytes come out as \xNN escapes: readable, and the line stays valid JSON.
            return self._string(bytes(value[: self.max_field * 4]).decode("utf-8", "backslashreplace"), flags)
        if isinstance(value, int):  # IntEnum, IntFlag...
            return self.clean(int(value), flags, depth)
        if isinstance(value, float):
            return self.clean(float(value), flags, depth)
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return value.isoformat()
        if isinstance(value, BaseException):
            return self.exception(type(value), value, value.__traceback__, flags)
        try:
            text = str(value)
        except Exception as exc:  # a broken __str__ must not lose the line
            text = f"<unprintable {kind.__name__}: {type(exc).__name__}>"
        return self._string(text, flags)

    def _string(self, text: str, flags: list[str]) -> str:
        if text in self.clean_strings:
            return text
        limit = self.max_field
        if len(text) > limit:
            # Redact a window larger than what is kept, so a secret cut at the edge is still seen whole.
            text = self.redactor.text(text[: limit * 2])
            if len(text) > limit:
                flags.append("string")
                return text[:limit] + TRUNCATED
            return text
        return self.redactor.text(text) if self.redact else text

    def exception(
        self, etype: type[BaseException] | None, value: BaseException | None, tb: Any, flags: list[str]
    ) -> Any:
        """An exception as ``{"type", "message", "traceback", "frames"}``, redacted and bounded."""
        if etype is None:
            return None
        name = etype.__qualname__ if etype.__module__ == "builtins" else f"{etype.__module__}.{etype.__qualname__}"
        try:
            message = str(value) if value is not None else ""
        except Exception:
            message = "<unprintable>"
        frames = traceback.extract_tb(tb)[-30:] if tb is not None else []
        text = "".join(traceback.format_exception(etype, value, tb))
        # A traceback's end (the innermost frames, the exception line) matters most: keep the tail.
        limit = self.max_field
        text = self.redactor.text(text[-limit * 2 :])
        if len(text) > limit:
            flags.append("traceback")
            text = TRUNCATED_HEAD + text[-limit:]
        return {
            "type": name,
            "message": self._string(message, flags),
            "traceback": text,
            "frames": [{"file": f.filename, "line": f.lineno, "function": f.name} for f in frames],
        }

    def _shrink(self, out: dict[str, Any]) -> str:
        """A line over ``max_line_length``: keep the base keys (message cut), name the dropped fields."""
        keep = {k: v for k, v in out.items() if k in BASE_KEYS and k != "exception"}
        keep["message"] = str(keep.get("message", ""))[:1024]
        exc = out.get("exception")
        if isinstance(exc, dict):
            keep["exception"] = {"type": exc.get("type"), "message": str(exc.get("message", ""))[:1024]}
        keep["truncated"] = True
        keep["dropped_fields"] = sorted(k for k in out if k not in keep)[:100]
        return self._dumps(keep)


def _blank(value: Any) -> bool:
    # Identity and type checks only: ``value == ""`` on an arbitrary object (a numpy array) may
    # raise or not be a bool.
    return value is None or value is True or value is False or (type(value) is str and not value)
