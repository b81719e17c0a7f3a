"""The facts of one HTTP request, computed once and read by every middleware.

Each middleware needs the same things about a request: its method label, its path inside the
app, its route template and how it ended. They are computed here, once per request, on one
:class:`RequestFacts` object that the stacked middlewares of one app share::

    from ops_observe import request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts, receive, send = request.enter(scope, receive, send, self.django)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            facts.fail(exc)  # before re-raising: the outer middlewares' finally sees it too
            raise
        finally:
            ...  # record: facts.method, facts.path, facts.route, facts.status, facts.server_error

API:

* ``enter(scope, receive, send, django=None) -> (facts, receive, send)``: the facts of ``scope``.
  The first middleware to see the scope (the outermost) creates them and wraps ``receive`` and
  ``send`` once, to record the outcome; it gets the wrapped callables. A middleware inside it,
  handed the same scope dict with the same ``root_path`` and the ``receive`` the creator passed on,
  gets the same facts and its own ``receive``/``send`` back untouched. Pass on the callables
  returned. ``django`` is passed to :func:`ops_observe.routes.route_template` (the creator's value
  is used; compute it once in ``__init__`` with ``is_django_app(app)``). A scope with another
  ``root_path`` (a sub-app mounted inside a wrapped app and wrapped itself) or another dict (a
  middleware in between that copied it) gets facts of its own.
* ``shared(scope, receive) -> RequestFacts | None``: the facts a middleware outside made for
  ``scope``, as ``enter`` finds them, without making any (``None``: there are none).
* ``publish(facts) -> token`` / ``unpublish(token)``: for a middleware that wraps ``receive``
  itself before the inner middlewares run (the stock OpenTelemetry middleware does): the facts
  stay found through a context variable until ``unpublish``. Nothing else sets it, and until
  the process's first ``publish`` nothing reads it either.

How the facts are found: the creator's ``receive`` wrapper is a method of the facts, so an inner
middleware finds them on the ``receive`` it was handed (its ``__self__``), at the cost of an
attribute read. A context variable would cost a set and a reset per request (a new context
mapping each time: cache misses the whole stack pays, measured in ``docs/performance.md``).
So a middleware in between that wraps ``receive`` (and does not publish) hides the facts from
the middlewares inside it: they make facts of their own, as correct, only not shared.

* ``RequestFacts`` (``__slots__``, no per-request dict; made by ``enter()`` only), set before the app runs:

  - ``scope``: the scope dict; ``raw_method``: ``scope["method"]`` as sent (for a log line, to be
    redacted: the client wrote it); ``method``: the label, one of :data:`STANDARD_METHODS` or
    :data:`OTHER_METHOD` (methods are case-sensitive: ``"get"`` is ``"OTHER"``).
  - ``path``: the path inside the app (``scope["path"]`` without ``root_path`` when it starts with
    it); ``root_path``: ``scope["root_path"]`` as it was before the app ran; ``start``: the
    ``time.perf_counter()`` of ``enter``.

  recorded as the request runs (read them in ``finally``):

  - ``response_status``: the status of ``http.response.start`` (0 before it); ``first_byte``: the
    ``perf_counter()`` when it passed (0.0 before it); ``response_headers``: its headers.
  - ``request_size`` / ``response_size``: body bytes received / sent; ``streamed``: a body part
    with ``more_body`` was sent; ``completed``: the final body part was sent (no ``more_body``).
  - ``disconnected``: ``receive()`` returned ``http.disconnect``; ``error``: the first exception
    given to ``fail()``.

  and derived from them, after the app ran:

  - ``route``: the route template (``None``: no route matched), computed on first read and cached.
  - ``client_gone``: the response did not complete and the client went away: ``receive()`` said
    ``http.disconnect``, or the app raised a cancellation (asyncio ``CancelledError``, trio
    ``Cancelled``, Starlette ``ClientDisconnect``, uvicorn ``ClientDisconnected``, told by class
    name so that nothing is imported).
  - ``status``: the status to record: :data:`CLIENT_CLOSED_STATUS` (499) when the client went away,
    else the response's, else 500 (an exception, or an app that returned without responding).
  - ``server_error``: the exception to report as a server error, or ``None``: none was raised, the
    client went away (its doing, not the server's), or it was a cancellation.

  ``outcome()`` returns ``(status, route, server_error)`` at once (cheaper than reading the three);
  and ``fail(exc)`` (the first call wins) and ``on_response_start(callback)`` (called with no
  argument when ``http.response.start`` passes, e.g. to read the active trace for an exemplar).

Ordering: middlewares are stacked. The messages the app sends are recorded by the creator's
wrapper as they pass it, before the app's ``send()`` returns, so every middleware's ``finally``
sees them; an exception reaches the innermost middleware first, hence ``fail()`` in each ``except``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from typing import Any

from ops_observe.routes import route_template
from ops_observe.types import Message, Receive, Scope, Send

__all__ = [
    "CANCELLATIONS",
    "CLIENT_CLOSED_STATUS",
    "OTHER_METHOD",
    "STANDARD_METHODS",
    "STREAM_MEDIA_TYPES",
    "RequestFacts",
    "enter",
    "is_cancellation",
    "media_types",
    "publish",
    "shared",
    "unpublish",
]

STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
"""The method labels kept as they are (RFC 9110's methods plus PATCH)."""
OTHER_METHOD = "OTHER"
"""The label of every method outside :data:`STANDARD_METHODS` (their set is unbounded)."""
CLIENT_CLOSED_STATUS = 499
"""Status of a request whose client went away before the response completed (nginx's "client closed")."""
CANCELLATIONS = frozenset({"CancelledError", "Cancelled", "ClientDisconnect", "ClientDisconnected"})
"""Class names of the exceptions that mean the request was cancelled or its client went away."""

STREAM_MEDIA_TYPES = ("text/event-stream", "application/x-ndjson", "multipart/x-mixed-replace")
"""Media types of long-lived streams, by default (``metrics.stream_content_types``): such a
response's duration is how long it had news to send, not how slowly it answered."""

_LABELS = {name: name for name in STANDARD_METHODS}
_UNSET: Any = object()
_perf = time.perf_counter
# The facts published by a middleware that wraps receive itself (see publish()); nothing else sets it.
_published: ContextVar[RequestFacts | None] = ContextVar("ops_observe.request", default=None)
# Whether publish() was ever called in this process: until then the context variable holds
# nothing, and enter() skips reading it (a read after any context change is a look-up).
_publishing = False


def app_path(scope: Scope) -> str:
    """The path inside the app: ``scope["path"]`` without ``scope["root_path"]`` when it starts with it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


def media_types(names: Iterable[str]) -> frozenset[bytes]:
    """Media type names as :meth:`RequestFacts.is_stream` compares them (lower case, bytes)."""
    return frozenset(name.strip().lower().encode("latin-1") for name in names)


def is_cancellation(error: BaseException) -> bool:
    """Whether ``error`` is a cancellation or a client disconnect (by class name, see :data:`CANCELLATIONS`)."""
    return type(error).__name__ in CANCELLATIONS


class RequestFacts:
    """What every middleware needs about one HTTP request; see the module docstring."""

    __slots__ = (
        "_hooks",
        "_receive",
        "_route",
        "_send",
        "completed",
        "disconnected",
        "django",
        "error",
        "first_byte",
        "method",
        "path",
        "raw_method",
        "request_size",
        "response_headers",
        "response_size",
        "response_status",
        "root_path",
        "scope",
        "start",
        "streamed",
    )

    # Every slot is set by enter(), which makes the facts: no __init__, because calling a class
    # with one costs about twice as much as calling a class without (slot_tp_init's extra frame).
    scope: Scope
    raw_method: str
    method: str
    path: str
    root_path: str
    django: bool | None
    start: float
    response_status: int
    first_byte: float
    response_headers: Any
    request_size: int
    response_size: int
    streamed: bool
    completed: bool
    disconnected: bool
    error: BaseException | None
    _route: str | None
    _hooks: list[Callable[[], object]] | None
    _receive: Receive  # the callables enter()'s wrappers pass the messages on to
    _send: Send

    def __repr__(self) -> str:
        return f"<RequestFacts {self.method} {self.path!r} status={self.response_status}>"

    def fail(self, error: BaseException) -> None:
        """Record the exception that ended the request; the first call wins (the innermost caller)."""
        if self.error is None:
            self.error = error

    def on_response_start(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when ``http.response.start`` passes (register it before the app runs)."""
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(callback)

    def is_stream(self, types: frozenset[bytes]) -> bool:
        """Whether the response is a long-lived stream: sent in several parts, with a media type of
        ``types`` (from :func:`media_types`); read it after the app ran."""
        if not self.streamed or not types:
            return False
        for name, value in self.response_headers:
            if name.lower() == b"content-type":
                return value.split(b";", 1)[0].strip().lower() in types
        return False

    @property
    def route(self) -> str | None:
        """The route template, or ``None`` when no route matched; read it after the app ran."""
        route = self._route
        if route is _UNSET:
            route = self._route = route_template(self.scope, self.root_path, self.django)  # positional: cheaper
        return route

    @property
    def client_gone(self) -> bool:
        """The response did not complete and the client went away (disconnect or cancellation)."""
        if self.completed:
            return False
        error = self.error
        return self.disconnected or (error is not None and type(error).__name__ in CANCELLATIONS)

    @property
    def status(self) -> int:
        """The status to record: 499 when the client went away, the response's, else 500."""
        if self.completed:  # the common case, decided at once
            return self.response_status or 500
        if self.client_gone:
            return CLIENT_CLOSED_STATUS
        return self.response_status or 500

    @property
    def server_error(self) -> BaseException | None:
        """The exception to count and log as a server error, or ``None`` (see the module docstring)."""
        error = self.error
        if error is None or type(error).__name__ in CANCELLATIONS or self.client_gone:
            return None
        return error

    def outcome(self) -> tuple[int, str | None, BaseException | None]:
        """``(status, route, server_error)`` in one call: what a recording middleware reads in its
        ``finally``, after the app ran. The same as the three properties (computed anew each call,
        the route cached), in one Python frame instead of four or five on the hot path."""
        route = self._route
        if route is _UNSET:
            route = self._route = route_template(self.scope, self.root_path, self.django)  # positional: cheaper
        error = self.error
        cancelled = error is not None and type(error).__name__ in CANCELLATIONS
        if self.completed:
            status = self.response_status or 500
            gone = False
        else:
            gone = self.disconnected or cancelled
            status = CLIENT_CLOSED_STATUS if gone else (self.response_status or 500)
        return status, route, None if cancelled or gone else error

    async def _observe_receive(self) -> Message:
        # The receive passed on by the middleware that created the facts.
        message = await self._receive()
        kind = message["type"]
        if kind == "http.request":
            body = message.get("body")
            if body:
                self.request_size += len(body)
        elif kind == "http.disconnect":
            self.disconnected = True
        return message

    async def _observe_send(self, message: Message) -> None:
        # The send passed on by the middleware that created the facts.
        send = self._send
        kind = message["type"]
        if kind == "http.response.body":
            body = message.get("body")
            if body:
                self.response_size += len(body)
            if message.get("more_body"):
                self.streamed = True
                await send(message)
            else:
                await send(message)
                # Only once the server took the last part (a send that raised did not complete), and
                # not after the client went away: the server drops what is sent then (Starlette's
                # 500 for a ClientDisconnect), so the request stays a 499.
                if not self.disconnected:
                    self.completed = True
            return
        if kind == "http.response.start":
            self.response_status = message["status"]
            # The status line and headers are the response's first bytes on the wire.
            self.first_byte = _perf()
            self.response_headers = message.get("headers", ())
            hooks = self._hooks
            if hooks is not None:
                for hook in hooks:
                    hook()
        await send(message)


def shared(scope: Scope, receive: Receive) -> RequestFacts | None:
    """The facts a middleware outside made for ``scope``, or ``None``; see the module docstring."""
    root_path = scope.get("root_path", "")
    facts = getattr(receive, "__self__", None)
    if type(facts) is RequestFacts and facts.scope is scope and facts.root_path == root_path:
        return facts
    facts = _published.get() if _publishing else None
    if facts is not None and facts.scope is scope and facts.root_path == root_path:
        return facts
    return None


def publish(facts: RequestFacts) -> Token[RequestFacts | None]:
    """Keep ``facts`` found by the inner middlewares although ``receive`` is wrapped on the way."""
    global _publishing
    _publishing = True
    return _published.set(facts)


def unpublish(token: Token[RequestFacts | None]) -> None:
    """End :func:`publish`."""
    _published.reset(token)


def enter(scope: Scope, receive: Receive, send: Send, django: bool | None = None) -> tuple[RequestFacts, Receive, Send]:
    """The facts of ``scope`` and the ``receive``/``send`` to pass on; see the module docstring.

    Args:
        scope: An ``http`` scope, before the app ran.
        receive: The ``receive`` this middleware was given.
        send: The ``send`` this middleware was given.
        django: Passed to ``route_template`` when the facts are created here.

    Returns:
        ``(facts, receive, send)``: when the facts are created here, ``receive`` and ``send`` are
        wrapped; when a middleware outside made them, they are the ones given.
    """
    root_path: str = scope.get("root_path", "")
    # shared(scope, receive), inline: this runs on every request.
    facts = getattr(receive, "__self__", None)
    if type(facts) is RequestFacts and facts.scope is scope and facts.root_path == root_path:
        return facts, receive, send
    facts = _published.get() if _publishing else None
    if facts is not None and facts.scope is scope and facts.root_path == root_path:
        return facts, receive, send
    facts = RequestFacts()
    facts.scope = scope
    raw: str = scope["method"]
    facts.raw_method = raw
    facts.method = _LABELS.get(raw, OTHER_METHOD)
    path: str = scope["path"]
    # app_path(scope), inline.
    facts.path = path[len(root_path) :] if root_path and path.startswith(root_path) else path
    facts.root_path = root_path
    facts.django = django
    facts.start = _perf()
    facts.response_status = 0
    facts.first_byte = 0.0
    facts.response_headers = ()
    facts.request_size = 0
    facts.response_size = 0
    facts.streamed = False
    facts.completed = False
    facts.disconnected = False
    facts.error = None
    facts._route = _UNSET
    facts._hooks = None
    facts._receive = receive
    facts._send = send
    return facts, facts._observe_receive, facts._observe_send
