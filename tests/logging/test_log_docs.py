"""docs/logging.md agrees with the code: settings tables, line keys, access fields, redaction kinds."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from ops_observe import redaction
from ops_observe.logging.middleware import AccessLogMiddleware
from ops_observe.logging.render import BASE_KEYS
from ops_observe.settings_reference import render

from log_lines import Lines

DOC = (Path(__file__).resolve().parents[2] / "docs" / "logging.md").read_text()


def logging_sections(text: str) -> str:
    """The ``[ops_observe.logging...]`` sections of a settings page."""
    start = text.index("## `[ops_observe.logging]`")
    end = text.find("\n## `[ops_observe.", text.index("## `[ops_observe.logging.access]`"))
    return text[start : end if end != -1 else len(text)].strip()


def test_settings_tables_match_the_generated_reference() -> None:
    assert logging_sections(DOC) == logging_sections(render())


def test_every_line_key_is_documented() -> None:
    table = DOC.split("## The line", 1)[1].split("## API", 1)[0]
    for key in BASE_KEYS | {"dropped_fields"}:
        assert f"`{key}`" in table, key


def test_every_access_field_is_documented(lines: Lines) -> None:
    lines.install()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/crash":
            raise RuntimeError("x")
        scope["state"] = {"user_id": 1}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = AccessLogMiddleware(app, query="redact", slow_request_ms=0.000001)
    for path in ("/ok", "/crash"):
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"a=1",
            "headers": [],
            "http_version": "1.1",
        }
        scope["ops_observe.route"] = "/tpl"
        try:
            asyncio.run(middleware(scope, _receive, _send))
        except RuntimeError:
            pass
    table = DOC.split("## The access log", 1)[1].split("## Redaction", 1)[0]
    written = {key for line in lines.parsed() for key in line} - BASE_KEYS
    assert written >= {
        "method",
        "path",
        "route",
        "status",
        "duration_ms",
        "ttfb_ms",
        "query",
        "slow",
        "error",
        "user_id",
    }
    for key in written:
        assert f"`{key}`" in table, key


def test_every_redaction_kind_and_secret_word_is_documented() -> None:
    table = DOC.split("## Redaction", 1)[1].split("## Sinks", 1)[0]
    source = Path(redaction.__file__).read_text()
    for kind in set(re.findall(r"\[REDACTED:([a-z_]+)\]", source)):
        assert f"| `{kind}` |" in table, kind
    documented = {w.replace("_", "") for w in re.findall(r"`([a-z_]+)`", table)}
    for word in redaction.SECRET_WORDS | redaction.SECRET_PAIRS:
        assert word in documented or word.rstrip("s") in documented, word


async def _receive() -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None
