"""The correlation-ID middleware: kept when valid, replaced otherwise, never echoed unvalidated."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_observe.correlation import ALLOWED_BYTES, correlation_id, generate_id, get_correlation_id, is_valid_id
from ops_observe.correlation.middleware import CorrelationIdMiddleware
from ops_observe.types import Message, Receive, Scope, Send

HEX32 = re.compile(r"[0-9a-f]{32}")


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = (get_correlation_id() or "").encode("latin-1")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-correlation-id", b"from-app")]})
    await send({"type": "http.response.body", "body": body})


def call(app: Any, headers: list[tuple[bytes, bytes]], scope_type: str = "http") -> tuple[list[Message], str | None]:
    """Run one request; return what was sent and the correlation ID left in the context after it."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> str | None:
        await app({"type": scope_type, "path": "/", "headers": headers}, receive, send)
        return get_correlation_id()

    return sent, asyncio.run(run())


def response_ids(sent: list[Message]) -> list[bytes]:
    return [v for k, v in sent[0]["headers"] if k == b"x-correlation-id"]


@pytest.mark.parametrize(
    "incoming",
    [
        b"0f8fad5b-d9cb-469f-a165-70867728950e",  # UUID
        b"0f8fad5bd9cb469fa16570867728950e",  # uuid4().hex, nginx $request_id
        b"01ARZ3NDEKTSV4RRFFQ69G5FAV",  # ULID
        b"Root=1-5759e988-bd862e3fe1be46a994272793",  # AWS X-Amzn-Trace-Id
        b"abc123",
    ],
)
def test_valid_incoming_id_is_kept_and_returned(incoming: bytes) -> None:
    sent, after = call(CorrelationIdMiddleware(echo_app), [(b"x-correlation-id", incoming)])
    assert sent[1]["body"] == incoming
    assert response_ids(sent) == [incoming], "the app's own header is replaced, not duplicated"
    assert after is None, "the context variable is reset after the request"


@pytest.mark.parametrize(
    "incoming",
    [b"", b"has space", b"new\nline", b"<script>", b"x" * 129, b"caf\xc3\xa9", b'quote"d', b"a,b"],
)
def test_invalid_incoming_id_is_replaced(incoming: bytes) -> None:
    sent, _ = call(CorrelationIdMiddleware(echo_app), [(b"x-correlation-id", incoming)])
    assert HEX32.fullmatch(sent[1]["body"].decode())
    assert response_ids(sent) == [sent[1]["body"]]


def test_configured_header_wins_over_accepted_ones_whatever_the_order() -> None:
    app = CorrelationIdMiddleware(echo_app)
    sent, _ = call(app, [(b"x-request-id", b"from-request-id"), (b"x-correlation-id", b"from-correlation-id")])
    assert sent[1]["body"] == b"from-correlation-id"
    sent, _ = call(app, [(b"x-request-id", b"from-request-id"), (b"x-correlation-id", b"bad id")])
    assert sent[1]["body"] == b"from-request-id"


def test_custom_header_generator_and_validator() -> None:
    app = CorrelationIdMiddleware(
        echo_app,
        header="X-Trace",
        accept_headers=(),
        generator=lambda: "generated",
        validator=lambda raw, limit: raw.startswith(b"ok-"),
    )
    sent, _ = call(app, [(b"x-trace", b"ok-1")])
    assert sent[1]["body"] == b"ok-1"
    assert (b"x-trace", b"ok-1") in sent[0]["headers"]
    sent, _ = call(app, [(b"x-trace", b"nope"), (b"x-request-id", b"ok-2")])
    assert sent[1]["body"] == b"generated"


def test_returned_on_an_unhandled_500() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def fail(request: Any) -> None:
        raise RuntimeError("boom")

    app = CorrelationIdMiddleware(Starlette(routes=[Route("/", fail)]))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"x-correlation-id", b"err-1")],
        "query_string": b"",
    }
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 500
    assert (b"x-correlation-id", b"err-1") in sent[0]["headers"]


def test_lifespan_passes_through_untouched() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_correlation_id())
        await send({"type": "lifespan.startup.complete"})

    sent, _ = call(CorrelationIdMiddleware(app), [], scope_type="lifespan")
    assert seen == [None]
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_nested_instances_restore_the_outer_id() -> None:
    inner_seen: list[str | None] = []

    async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
        inner_seen.append(get_correlation_id())
        await echo_app(scope, receive, send)

    inner = CorrelationIdMiddleware(inner_app, header="X-Inner", accept_headers=(), generator=lambda: "inner")

    async def outer_app(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)
        inner_seen.append(get_correlation_id())

    call(CorrelationIdMiddleware(outer_app), [(b"x-correlation-id", b"outer")])
    assert inner_seen == ["inner", "outer"]


def test_concurrent_requests_never_see_each_others_id() -> None:
    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        mine = get_correlation_id()
        await asyncio.sleep(0.001)
        assert get_correlation_id() == mine
        await echo_app(scope, receive, send)

    app = CorrelationIdMiddleware(slow_app)

    async def one(i: int) -> bytes:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request"}

        await app({"type": "http", "headers": [(b"x-correlation-id", f"req-{i}".encode())]}, receive, send)
        return bytes(sent[1]["body"])

    async def run() -> list[bytes]:
        return await asyncio.gather(*(one(i) for i in range(200)))

    assert asyncio.run(run()) == [f"req-{i}".encode() for i in range(200)]


# -- properties over arbitrary header bytes -----------------------------------------------------


@given(st.binary(max_size=300))
def test_any_header_bytes_are_kept_only_when_valid(raw: bytes) -> None:
    sent, after = call(CorrelationIdMiddleware(echo_app), [(b"x-correlation-id", raw)])
    returned = response_ids(sent)[0]
    body = sent[1]["body"]
    assert returned == body
    if is_valid_id(raw):
        assert returned == raw
    else:
        assert HEX32.fullmatch(returned.decode("ascii"))
    assert not returned.translate(None, ALLOWED_BYTES), "nothing outside the safe set is ever echoed"
    assert after is None


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=256))
def test_validator_agrees_with_its_definition(raw: bytes, limit: int) -> None:
    expected = 0 < len(raw) <= limit and all(b in ALLOWED_BYTES for b in raw)
    assert is_valid_id(raw, limit) is expected


def test_generated_ids_are_valid_and_distinct() -> None:
    ids = {generate_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_valid_id(i.encode()) and HEX32.fullmatch(i) for i in ids)
    assert correlation_id.get() is None
