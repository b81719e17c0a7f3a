"""The request facts: method labels, app paths, the cached route, each outcome, sharing between middlewares."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_observe.request import (
    CLIENT_CLOSED_STATUS,
    OTHER_METHOD,
    STANDARD_METHODS,
    RequestFacts,
    enter,
    is_cancellation,
    publish,
    shared,
    unpublish,
)
from ops_observe.routes import SCOPE_KEY
from ops_observe.types import ASGIApp, Message, Receive, Scope, Send


def scope_for(method: str = "GET", path: str = "/", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": []}


class CountingScope(dict[str, Any]):
    """A scope that counts how often the route is looked up (``route_template`` reads its key first)."""

    route_reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        if key == SCOPE_KEY:
            self.route_reads += 1
        return super().get(key, default)


class Observer:
    """A minimal middleware on the facts: keeps the facts it saw and their outcome in its ``finally``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[RequestFacts, int, BaseException | None, str | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        facts, receive, send = enter(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            facts.fail(exc)
            raise
        finally:
            self.seen.append((facts, facts.status, facts.server_error, facts.route))
            # The one-call read agrees with the three properties, in every outcome tested here.
            assert facts.outcome() == (facts.status, facts.route, facts.server_error)


def feeder(*messages: Message) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(10)  # a server waits for the next event
        raise AssertionError("unreachable")

    return receive


async def discard(message: Message) -> None:
    return None


def facts_of(scope: Scope, django: bool | None = None) -> RequestFacts:
    """The facts ``enter`` makes for ``scope`` (the only way they are made)."""
    return enter(scope, feeder(), discard, django)[0]


def serve(app: ASGIApp, scope: Scope, receive: Receive | None = None, send: Send = discard) -> None:
    asyncio.run(app(scope, receive or feeder({"type": "http.request", "body": b""}), send))


# -- method, path --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "label"),
    [
        *[(m, m) for m in STANDARD_METHODS],
        ("get", OTHER_METHOD),  # methods are case-sensitive
        ("Post", OTHER_METHOD),
        ("PROPFIND", OTHER_METHOD),
        ("BREW", OTHER_METHOD),
        ("", OTHER_METHOD),
    ],
)
def test_method_label(method: str, label: str) -> None:
    facts = facts_of(scope_for(method))
    assert (facts.method, facts.raw_method) == (label, method)


@settings(max_examples=200)
@given(method=st.text(max_size=40))
def test_any_method_gets_a_bounded_label_and_keeps_its_raw_value(method: str) -> None:
    facts = facts_of(scope_for(method))
    assert facts.method in (*STANDARD_METHODS, OTHER_METHOD)
    assert facts.raw_method == method
    assert (facts.method == method) is (method in STANDARD_METHODS)


@pytest.mark.parametrize(
    ("path", "root_path", "app_path"),
    [
        ("/items/1", "", "/items/1"),
        ("/api/items/1", "/api", "/items/1"),
        ("/api", "/api", ""),
        ("/other/items", "/api", "/other/items"),  # not a prefix: left as it is
        ("/apix/items", "/api", "x/items"),  # a string prefix, as the endpoint router strips it
    ],
)
def test_the_app_path_has_the_root_path_stripped(path: str, root_path: str, app_path: str) -> None:
    facts = facts_of(scope_for(path=path, root_path=root_path))
    assert (facts.path, facts.root_path) == (app_path, root_path)


def test_a_scope_without_root_path() -> None:
    facts = facts_of({"type": "http", "method": "GET", "path": "/x", "headers": []})
    assert (facts.path, facts.root_path) == ("/x", "")


@settings(max_examples=200)
@given(root_path=st.text(max_size=20), rest=st.text(max_size=20), other=st.text(max_size=20))
def test_root_path_stripping_is_exact(root_path: str, rest: str, other: str) -> None:
    facts = facts_of(scope_for(path=root_path + rest, root_path=root_path))
    assert facts.path == rest and facts.root_path == root_path
    if not other.startswith(root_path) or not root_path:
        assert facts_of(scope_for(path=other, root_path=root_path)).path == other


# -- route ---------------------------------------------------------------------------------------


def test_the_route_is_computed_once_after_the_app_ran() -> None:
    scope = CountingScope(scope_for(path="/items/1"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = "/items/{id}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    observer = Observer(app)
    serve(observer, scope)
    [(facts, status, error, route)] = observer.seen
    assert (status, error, route) == (200, None, "/items/{id}")
    assert facts.route == "/items/{id}" and facts.route == "/items/{id}"
    assert scope.route_reads == 1


def test_no_matched_route_is_none_and_cached() -> None:
    scope = CountingScope(scope_for(path="/nope"))
    facts = facts_of(scope, django=False)
    assert facts.route is None and facts.route is None
    assert scope.route_reads == 1


# -- outcomes ------------------------------------------------------------------------------------


def test_a_completed_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cde"})

    observer = Observer(app)
    serve(observer, scope_for("POST"), feeder({"type": "http.request", "body": b"1234"}))
    [(facts, status, error, _)] = observer.seen
    assert (status, error, facts.completed, facts.client_gone) == (201, None, True, False)
    assert (facts.request_size, facts.response_size, facts.streamed) == (4, 5, True)
    assert facts.start <= facts.first_byte
    assert list(facts.response_headers) == [(b"content-type", b"text/plain")]


def test_an_exception_before_the_response_started_is_a_500_server_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("boom")

    observer = Observer(app)
    with pytest.raises(KeyError):
        serve(observer, scope_for())
    [(facts, status, error, _)] = observer.seen
    assert (status, type(error), facts.response_status, facts.client_gone) == (500, KeyError, 0, False)


def test_an_exception_after_the_response_started_keeps_its_status_and_is_an_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-stream")

    observer = Observer(app)
    with pytest.raises(RuntimeError):
        serve(observer, scope_for())
    [(facts, status, error, _)] = observer.seen
    assert (status, type(error), facts.completed) == (200, RuntimeError, False)


def test_an_app_that_returns_without_responding_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    observer = Observer(app)
    serve(observer, scope_for())
    assert observer.seen[0][1:3] == (500, None)


def test_a_disconnect_mid_body_is_a_499_and_no_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        message = await receive()
        assert message["type"] == "http.disconnect"  # the client went away: the app stops streaming

    observer = Observer(app)
    serve(observer, scope_for(), feeder({"type": "http.disconnect"}))
    [(facts, status, error, _)] = observer.seen
    assert (status, error, facts.disconnected, facts.client_gone) == (CLIENT_CLOSED_STATUS, None, True, True)
    assert facts.response_status == 200


def test_an_exception_after_a_disconnect_is_the_clients_doing() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise OSError("write on a closed transport")

    observer = Observer(app)
    with pytest.raises(OSError):
        serve(observer, scope_for(), feeder({"type": "http.disconnect"}))
    [(facts, status, error, _)] = observer.seen
    assert (status, error) == (499, None) and isinstance(facts.error, OSError)


def test_a_disconnect_after_the_response_completed_keeps_its_status() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await receive()  # e.g. a background task waiting for the disconnect

    observer = Observer(app)
    serve(observer, scope_for(), feeder({"type": "http.disconnect"}))
    assert observer.seen[0][1:3] == (200, None)


def test_a_send_that_raises_did_not_complete() -> None:
    class ClientDisconnected(OSError):
        """Named as uvicorn's."""

    async def closed(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ClientDisconnected

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"all"})

    observer = Observer(app)
    with pytest.raises(ClientDisconnected):
        serve(observer, scope_for(), send=closed)
    [(facts, status, error, _)] = observer.seen
    assert (status, error, facts.completed) == (499, None, False)


def test_a_cancelled_request_is_a_499_and_no_error() -> None:
    started = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.sleep(10)

    observer = Observer(app)

    async def main() -> None:
        task = asyncio.create_task(observer(scope_for(), feeder(), discard))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    [(facts, status, error, _)] = observer.seen
    assert (status, error, facts.client_gone) == (499, None, True)
    assert isinstance(facts.error, asyncio.CancelledError)


def test_a_trio_cancellation_is_a_499() -> None:
    import trio

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await trio.sleep(10)

    observer = Observer(app)

    async def main() -> None:
        with trio.move_on_after(0.01):
            await observer(scope_for(), discard_receive, discard)

    async def discard_receive() -> Message:
        return {"type": "http.request"}

    trio.run(main)
    assert observer.seen[0][1:3] == (499, None)


@pytest.mark.parametrize(
    ("name", "base", "cancellation"),
    [
        ("CancelledError", BaseException, True),
        ("Cancelled", BaseException, True),
        ("ClientDisconnect", Exception, True),
        ("ClientDisconnected", OSError, True),
        ("RuntimeError", Exception, False),
        ("Disconnect", Exception, False),
    ],
)
def test_cancellations_are_told_by_class_name(name: str, base: type[BaseException], cancellation: bool) -> None:
    error = type(name, (base,), {})()
    assert is_cancellation(error) is cancellation
    facts = facts_of(scope_for())
    facts.fail(error)
    assert (facts.status, facts.server_error is None) == ((499, True) if cancellation else (500, False))


def test_a_cancellation_after_the_response_completed_is_no_error() -> None:
    facts = facts_of(scope_for())
    facts.response_status, facts.completed = 204, True
    facts.fail(asyncio.CancelledError())
    assert (facts.status, facts.server_error, facts.client_gone) == (204, None, False)


def test_the_first_failure_wins() -> None:
    facts = facts_of(scope_for())
    first = ValueError("inner")
    facts.fail(first)
    facts.fail(RuntimeError("outer"))
    assert facts.error is first and facts.server_error is first


# -- sharing -------------------------------------------------------------------------------------


def test_stacked_middlewares_share_one_facts_object_and_one_wrapping() -> None:
    sends: list[Send] = []
    inside: list[RequestFacts | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        sends.append(send)
        inside.append(shared(scope, receive))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    inner = Observer(app)
    outer = Observer(inner)
    scope = CountingScope(scope_for())
    responses: list[Message] = []

    async def collect(message: Message) -> None:
        responses.append(message)

    serve(outer, scope, send=collect)
    [(outer_facts, *_)], [(inner_facts, *_)] = outer.seen, inner.seen
    assert outer_facts is inner_facts is inside[0]
    assert scope.route_reads == 1
    assert outer_facts.response_size == 2  # counted once, not once per middleware
    assert sends[0] is not collect  # wrapped once, by the outer middleware
    assert len(responses) == 2


def test_a_middleware_alone_creates_the_facts_and_shares_them_through_receive_only() -> None:
    scope = scope_for()
    given_receive = feeder()
    assert shared(scope, given_receive) is None
    facts, receive, send = enter(scope, given_receive, discard)
    assert send is not discard and receive is not given_receive
    assert shared(scope, receive) is facts
    assert shared(scope, given_receive) is None  # no context variable was set


def test_a_middleware_in_between_that_wraps_receive_hides_the_facts_unless_they_are_published() -> None:
    scope = scope_for()
    facts, receive, _ = enter(scope, feeder(), discard)

    async def wrapped_receive() -> Message:
        return await receive()

    hidden, _, _ = enter(scope, wrapped_receive, discard)
    assert hidden is not facts  # facts of its own: as correct, only not shared
    token = publish(facts)
    try:
        assert shared(scope, wrapped_receive) is facts
        again, same_receive, _ = enter(scope, wrapped_receive, discard)
        assert again is facts and same_receive is wrapped_receive
        assert shared(dict(scope), wrapped_receive) is None  # published for its own scope only
    finally:
        unpublish(token)
    assert shared(scope, wrapped_receive) is None


def test_the_first_publish_in_a_process_is_found() -> None:
    # enter() reads the published facts only once publish() was ever called: in a fresh process,
    # the first publish must be seen all the same.
    import subprocess
    import sys

    code = """
from ops_observe.request import enter, publish, shared
scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
async def receive(): return {"type": "http.request"}
async def send(message): pass
facts, wrapped, _ = enter(scope, receive, send)
async def in_between(): return await wrapped()
assert shared(scope, in_between) is None
publish(facts)
assert shared(scope, in_between) is facts and enter(scope, in_between, send)[0] is facts
print("found")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "found", done.stderr


def test_another_scope_or_root_path_gets_facts_of_its_own() -> None:
    scope = scope_for(path="/sub/x")
    outer, receive, send = enter(scope, feeder(), discard)
    again, same_receive, same_send = enter(scope, receive, send)
    assert again is outer and same_receive is receive and same_send is send
    copied, _, _ = enter(dict(scope), receive, send)
    assert copied is not outer
    scope["root_path"] = "/sub"  # a mounted sub-app, wrapped itself, sees the same dict
    mounted, _, _ = enter(scope, receive, send)
    assert mounted is not outer and mounted.path == "/x"


def test_concurrent_requests_keep_their_own_facts() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.001 * (len(scope["path"]) % 5))
        facts = shared(scope, receive)
        assert facts is not None and facts.scope is scope
        await send({"type": "http.response.start", "status": 200 + len(scope["path"]), "headers": []})
        await send({"type": "http.response.body", "body": b""})

    observer = Observer(app)

    async def main() -> None:
        await asyncio.gather(*(observer(scope_for(path="/" + "x" * n), feeder(), discard) for n in range(50)))

    asyncio.run(main())
    assert sorted(status for _, status, _, _ in observer.seen) == [201 + n for n in range(50)]


def test_response_start_hooks_run_when_the_response_starts() -> None:
    calls: list[int] = []
    facts, _, send = enter(scope_for(), feeder(), discard)
    facts.on_response_start(lambda: calls.append(facts.response_status))
    asyncio.run(send({"type": "http.response.start", "status": 202, "headers": []}))
    assert calls == [202]
    assert "GET" in repr(facts)


@pytest.mark.parametrize("message_spans", [False, True])
def test_the_whole_default_stack_looks_the_route_up_once(message_spans: bool) -> None:
    """Tracing (naming its recorded span), the access log and the metrics all read one facts object;
    with ``message_spans`` too, where the stock middleware wraps ``receive`` in between (published)."""
    import ops_observe

    seen: list[RequestFacts | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = "/r/{id}"
        seen.append(shared(scope, receive))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = ops_observe.wrap(
        app,
        settings={
            "middleware": ["correlation", "tracing", "logging", "metrics"],
            "tracing": {"exporter": "console", "sample_ratio": 1.0, "message_spans": message_spans},
            "logging": {"sink": "stderr"},
        },
    )
    scope = CountingScope({**scope_for(path="/r/1"), "query_string": b"", "asgi": {"version": "3.0"}})
    serve(wrapped, scope)
    runtime = wrapped.suite.state["tracing"]
    runtime.shutdown()
    assert seen[0] is not None and seen[0].route == "/r/{id}"
    assert scope.route_reads == 1  # the recorded span was named from the facts too: no second look-up
