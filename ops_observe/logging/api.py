"""The logging API: ``get_logger(name)``, ``log_context(**fields)``, ``log_call``, ``business_event``.

Example::

    from ops_observe import get_logger, log_call, log_context

    logger = get_logger(__name__)
    logger.info("Processing payment", amount=100, method="stripe")
    logger.business_event("subscription_upgraded", plan="pro", org_id=7)

    with log_context(order_id=42):
        logger.warning("card declined")        # carries order_id=42

    @log_call   # "charge returned" at INFO with duration_ms; "charge called" with the arguments at DEBUG
    async def charge(customer_email: str, password: str) -> None: ...   # arguments redacted in the lines

Keyword fields become top-level keys of the JSON line. Messages are never ``str.format``-ed with the
fields (loguru would): braces in a message are kept as they are.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from loguru import logger as _loguru

from ops_observe.logging import setup as _setup
from ops_observe.logging.context import bind_request, current_fields, log_context
from ops_observe.logging.stream import JsonStream

__all__ = ["StructuredLogger", "bind_request", "current_fields", "get_logger", "log_call", "log_context"]

F = TypeVar("F", bound=Callable[..., Any])

BUSINESS_EVENT = "business_event"
"""The ``kind`` of the lines written by :meth:`StructuredLogger.business_event`."""


def _escape(message: str) -> str:
    # loguru runs message.format(**fields) when fields are given: double the braces so it gives
    # back the message as written.
    if "{" in message or "}" in message:
        return message.replace("{", "{{").replace("}", "}}")
    return message


class StructuredLogger:
    """A named logger whose methods take keyword fields: ``logger.info("paid", amount=100)``.

    Once a stream is installed (``wrap()``), lines are rendered straight into it; before that they
    go through ``loguru.logger``, their fields in ``record["extra"]``.

    Args:
        name: The ``logger`` key of the lines.
        stream: Write to this stream rather than the installed one (positional only; for tests
            and benchmarks).
        fields: Fields bound to every line of this logger (see :meth:`bind`).
    """

    __slots__ = ("_event", "_logger", "_opt", "fields", "name", "stream")

    def __init__(self, name: str, stream: JsonStream | None = None, /, **fields: Any) -> None:
        self.name = name
        self.stream = stream
        self.fields = fields
        self._logger = _loguru.bind(_ops_logger=name, **fields)
        # The source location is the caller of info()/warning()... (two frames up: info, _emit).
        self._opt = self._logger.opt(depth=2)
        self._event = self._logger.opt(depth=1)

    def bind(self, **fields: Any) -> StructuredLogger:
        """A logger of the same name that adds ``fields`` to each of its lines."""
        return StructuredLogger(self.name, self.stream, **{**self.fields, **fields})

    def _emit(self, level: str | int, message: str, fields: dict[str, Any]) -> None:
        exc_info = fields.pop("exc_info", None)
        stream = self.stream or _setup.active
        if stream is not None:
            # The fast path: straight into the JSON stream; depth 3 is the caller of info()...
            stream.emit(
                level,
                self.name,
                message,
                {**self.fields, **fields} if self.fields else fields,
                depth=3,
                exc_info=exc_info or None,
            )
            return
        opt = self._opt if exc_info is None or exc_info is False else self._logger.opt(depth=2, exception=exc_info)
        if fields:
            opt.log(level, _escape(str(message)), **fields)
        else:
            opt.log(level, str(message))

    def trace(self, message: str, /, **fields: Any) -> None:
        """Write a TRACE line."""
        self._emit("TRACE", message, fields)

    def debug(self, message: str, /, **fields: Any) -> None:
        """Write a DEBUG line."""
        self._emit("DEBUG", message, fields)

    def info(self, message: str, /, **fields: Any) -> None:
        """Write an INFO line."""
        self._emit("INFO", message, fields)

    def success(self, message: str, /, **fields: Any) -> None:
        """Write a SUCCESS line (loguru's level between INFO and WARNING)."""
        self._emit("SUCCESS", message, fields)

    def warning(self, message: str, /, **fields: Any) -> None:
        """Write a WARNING line."""
        self._emit("WARNING", message, fields)

    def error(self, message: str, /, **fields: Any) -> None:
        """Write an ERROR line; ``exc_info=True`` (or an exception) adds the exception fields."""
        self._emit("ERROR", message, fields)

    def critical(self, message: str, /, **fields: Any) -> None:
        """Write a CRITICAL line."""
        self._emit("CRITICAL", message, fields)

    def exception(self, message: str, /, **fields: Any) -> None:
        """Write an ERROR line with the exception being handled, as structured fields."""
        fields.setdefault("exc_info", True)
        self._emit("ERROR", message, fields)

    def log(self, level: str | int, message: str, /, **fields: Any) -> None:
        """Write a line at ``level`` (a level name or number)."""
        self._emit(level, message, fields)

    def business_event(self, event: str, /, **fields: Any) -> None:
        """Write a business event: an INFO line with ``kind: "business_event"``, ``event`` and the fields.

        The message is the event name, so the line reads well in any viewer; filter on ``kind`` to
        get the events alone.
        """
        fields["event"] = event
        stream = self.stream or _setup.active
        if stream is not None:
            stream.emit(
                "INFO",
                self.name,
                event,
                {**self.fields, **fields} if self.fields else fields,
                depth=2,
                kind=BUSINESS_EVENT,
            )
            return
        fields["_ops_kind"] = BUSINESS_EVENT
        self._event.log("INFO", _escape(str(event)), **fields)

    def __repr__(self) -> str:
        return f"StructuredLogger({self.name!r})"


def get_logger(name: str | None = None, **fields: Any) -> StructuredLogger:
    """A :class:`StructuredLogger` named ``name`` (default: the calling module's ``__name__``)."""
    if name is None:
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        name = caller.f_globals.get("__name__", "app") if caller is not None else "app"
    return StructuredLogger(name, **fields)


@overload
def log_call(func: F, /) -> F: ...


@overload
def log_call(
    *,
    level: str | int = "INFO",
    entry_level: str | int = "DEBUG",
    logger: StructuredLogger | None = None,
    arguments: bool = True,
    result: bool = False,
) -> Callable[[F], F]: ...


def log_call(
    func: F | None = None,
    /,
    *,
    level: str | int = "INFO",
    entry_level: str | int = "DEBUG",
    logger: StructuredLogger | None = None,
    arguments: bool = True,
    result: bool = False,
) -> F | Callable[[F], F]:
    """Log the calls of a sync or async function: its exit at INFO, its entry at DEBUG.

    ``@log_call`` or ``@log_call(level="WARNING", entry_level="INFO", result=True)``. Each call
    writes up to three lines:

    - ``<qualname> called`` at ``entry_level`` (DEBUG: unwritten at the default level, INFO), with
      the call's arguments by name under ``arguments``, redacted like any field (a parameter named
      ``password`` shows as ``[REDACTED:secret]``; ``arguments=False`` leaves them out);
    - ``<qualname> returned`` at ``level`` (INFO: written at the default level), with
      ``duration_ms`` (and ``result`` when asked);
    - or ``<qualname> raised <Type>`` at ERROR with ``duration_ms`` and the exception's structured
      fields; the exception is then re-raised untouched.

    Args:
        level: Level of the exit line (a level name or number).
        entry_level: Level of the entry line, the one with the arguments.
        logger: The logger to write with (default: one named after the function's module).
        arguments: Log the arguments.
        result: Log the return value (redacted) on the exit line.
    """

    def decorate(fn: F) -> F:
        log = logger or StructuredLogger(getattr(fn, "__module__", None) or "app")
        qualname = getattr(fn, "__qualname__", repr(fn))
        code = getattr(fn, "__code__", None)
        # Every line of the call points at the decorated function, not at this wrapper.
        source = (os.path.basename(code.co_filename), code.co_firstlineno, code.co_name) if code else None
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None

        def bound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            if not arguments:
                return {}
            if signature is not None:
                try:
                    ba = signature.bind_partial(*args, **kwargs)
                    return {"arguments": {k: v for k, v in ba.arguments.items() if k not in ("self", "cls")}}
                except TypeError:
                    pass
            return {"arguments": {"args": list(args), **kwargs}}

        def write(lvl: str | int, message: str, exc: BaseException | None = None, **fields: Any) -> None:
            stream = log.stream or _setup.active
            if stream is not None:
                stream.emit(lvl, log.name, message, {**log.fields, **fields}, source=source, exc_info=exc)
            else:
                log._logger.opt(exception=exc).log(lvl, _escape(message), _ops_source=source, **fields)

        def entered(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            stream = log.stream or _setup.active
            if stream is not None and not stream.enabled(entry_level):
                return  # the usual case (DEBUG under INFO): the arguments are not even bound
            write(entry_level, f"{qualname} called", None, function_name=qualname, **bound(args, kwargs))

        def done(start: int, value: Any) -> None:
            fields: dict[str, Any] = {"function_name": qualname, "duration_ms": (time.perf_counter_ns() - start) / 1e6}
            if result:
                fields["result"] = value
            write(level, f"{qualname} returned", None, **fields)

        def failed(start: int, exc: BaseException) -> None:
            duration_ms = (time.perf_counter_ns() - start) / 1e6
            write(
                "ERROR", f"{qualname} raised {type(exc).__name__}", exc, function_name=qualname, duration_ms=duration_ms
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                entered(args, kwargs)
                start = time.perf_counter_ns()
                try:
                    value = await fn(*args, **kwargs)
                except BaseException as exc:
                    failed(start, exc)
                    raise
                done(start, value)
                return value

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            entered(args, kwargs)
            start = time.perf_counter_ns()
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                failed(start, exc)
                raise
            done(start, value)
            return value

        return cast(F, wrapper)

    if func is not None:
        return decorate(func)
    return decorate
