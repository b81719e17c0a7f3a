"""Settings of the JSON logging, the access log and PII redaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from ops_observe.schema import networks, non_empty, positive, setting, url_path

Level = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


def _paths(values: tuple[str, ...] | None) -> None:
    for value in values or ():
        url_path(value)


def _patterns(values: Mapping[str, str]) -> None:
    for name, source in values.items():
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"pattern name {name!r}: use lowercase letters, digits and '_'")
        try:
            re.compile(source)
        except re.error as exc:
            raise ValueError(f"pattern {name!r} is not a valid regular expression: {exc}") from None


def _at_least(low: int) -> Callable[[int], None]:
    def check(value: int) -> None:
        if value < low:
            raise ValueError(f"must be at least {low}")

    return check


def _non_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must be 0 or more")


@dataclass(frozen=True)
class RedactionSettings:
    """``[ops_observe.logging.redaction]``: PII and secrets replaced by ``[REDACTED:<type>]`` markers."""

    enabled: bool = setting(True, doc="Redact messages, fields, exception text and access-log values.")
    patterns: Mapping[str, str] = setting(
        doc="Extra regular expressions by name; a match becomes `[REDACTED:<name>]`.",
        factory=dict,
        check=_patterns,
    )
    keys: tuple[str, ...] = setting((), doc="Extra key words whose values are secret (e.g. `pin`, `otp`).")


@dataclass(frozen=True)
class AccessLogSettings:
    """``[ops_observe.logging.access]``: the access-log middleware (alias `logging`)."""

    query: Literal["omit", "redact"] = setting(
        "omit",
        doc='`"omit"`: `path` without the query string; `"redact"`: a `query` field with secrets redacted.',
    )
    exclude_paths: tuple[str, ...] | None = setting(
        None,
        doc="Paths never logged; default (unset): the suite's own endpoints (`/health`, `/metrics`...).",
        check=_paths,
    )
    slow_request_ms: float = setting(
        1000.0,
        doc="Requests at least this slow get `slow: true` and level WARNING at least; 0 disables. "
        "A long-lived stream (a response of `metrics.stream_content_types` sent in several parts, "
        "e.g. server-sent events) is judged by its time to first byte, not its whole duration.",
        check=_non_negative,
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        doc="Addresses or networks whose `X-Forwarded-For` / `Forwarded` is believed for `client`.",
        check=networks,
    )
    user_agent_max: int = setting(256, doc="Longest user agent kept, in characters.", check=_at_least(0))


@dataclass(frozen=True)
class LoggingSettings:
    """``[ops_observe.logging]``: JSON log lines, their sink and level."""

    enabled: bool | None = setting(
        None,
        doc="Install the JSON log stream (loguru's sink, the standard library's routing); "
        "unset: when `logging` (the access log) is in `middleware`.",
    )
    level: Level = setting("INFO", doc="Lowest level written.")
    sink: str = setting("stdout", doc='"stdout", "stderr" or a file path.', check=non_empty)
    enqueue: bool = setting(
        False,
        doc="Write through a queue and a thread, so a slow sink never blocks a request.",
    )
    rotation: str | None = setting(
        None,
        doc='File sinks: when to start a new file, as loguru reads it ("100 MB", "1 day", "00:00").',
    )
    retention: str | None = setting(None, doc='File sinks: how long or how many old files to keep ("10 days", "5").')
    compression: str | None = setting(None, doc='File sinks: compression of rotated files ("gz", "zip"...).')
    stdlib: bool = setting(
        True,
        doc="Route the standard library's `logging` (uvicorn, httpx...) into the same JSON stream.",
    )
    keep_server_access_log: bool = setting(
        False,
        doc="Keep uvicorn's own access log (`uvicorn.access`) while ours runs; by default it is silenced, "
        "as it would log each request a second time.",
    )
    root_level: Level | None = setting(
        None,
        doc="Set the standard library's root logger to this level; unset: leave it as it is "
        "(Python's default is WARNING, so `logging.getLogger(name).info(...)` stays unwritten).",
    )
    source: bool = setting(True, doc="Add `file`, `line` and `function` of the call to each line.")
    max_field_length: int = setting(
        4096,
        doc="Longest string kept in a field or message; longer ones are cut and marked `truncated`.",
        check=positive,
    )
    max_line_length: int = setting(
        65536,
        doc="Longest line written; fields of a longer line are cut further (the line stays valid JSON).",
        check=positive,
    )
    redaction: RedactionSettings = setting(doc="PII redaction.", factory=RedactionSettings)
    access: AccessLogSettings = setting(doc="The access log.", factory=AccessLogSettings)
