"""Installing the JSON stream into loguru, and routing the standard library's ``logging`` into it.

loguru's logger and ``logging``'s root are process-wide, so this module keeps exactly one
installation: :func:`configure` is idempotent (equal settings: nothing happens; other settings:
the previous installation is replaced), and :func:`reset` puts back everything it changed (loguru's
default handler, the root logger's handlers and level, the console handlers taken off other
loggers, the filter silencing uvicorn's access log).

One line per event: console handlers (which would print a record again, as plain text) are taken
off every logger, uvicorn's access log is silenced while ours runs (``silence_server_access``), and
a server's own report of an exception the access log has already written with its traceback
(uvicorn's "Exception in ASGI application") is left out of the stream (:func:`mark_logged`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from ops_observe.logging.render import JsonRenderer
from ops_observe.logging.settings import LoggingSettings
from ops_observe.logging.stream import (
    LEVELS,
    CallableWriter,
    FileWriter,
    JsonStream,
    LoguruWriter,
    StreamWriter,
    Writer,
)
from ops_observe.redaction import get_redactor
from ops_observe.root import Settings

__all__ = [
    "SERVER_ACCESS_LOGGER",
    "SERVER_LOGGERS",
    "InterceptHandler",
    "active",
    "build_stream",
    "configure",
    "mark_logged",
    "reroute",
    "reset",
]

SERVER_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn.error",
    "gunicorn.access",
    "hypercorn.error",
    "hypercorn.access",
)
"""Loggers that servers give their own handlers (looked at even before they exist); like every
logger's, their console handlers are taken off so they propagate to ours."""

SERVER_ACCESS_LOGGER = "uvicorn.access"
"""uvicorn's access log, silenced while the suite's access log runs (``logging.keep_server_access_log``)."""

_SERVER_LOGGERS = frozenset(SERVER_LOGGERS)
_LOGGED = "_ops_observe_logged"

active: JsonStream | None = None
"""The installed stream, read by the suite's loggers and the access log on each line; ``None`` before
:func:`configure` (their lines then go through ``loguru.logger``)."""

# The attributes every LogRecord has; anything else came from ``extra={...}`` and becomes a field.
# uvicorn adds ``color_message``: the message again, with terminal colour codes, no use in JSON.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


class InterceptHandler(logging.Handler):
    """A ``logging`` handler that re-emits each record into the JSON stream (through loguru when none
    is installed).

    The record's logger name, source location, ``extra`` fields and exception are kept; the line
    gets the same context (correlation id, log context, span) as a loguru line written there.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            try:
                message = record.getMessage()
            except Exception:  # a bad %-format in some library must not lose the line
                message = f"{record.msg!r} % {record.args!r}"
            level: str | int = record.levelname if record.levelname in LEVELS else record.levelno
            fields = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}
            exc = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
            if exc is not None and record.name in _SERVER_LOGGERS and getattr(exc[1], _LOGGED, False):
                # The server's report of an exception the access log wrote already, with the
                # request's correlation id and the same traceback: the same failure twice.
                return
            stream = active
            if stream is not None:
                # Straight into the stream, like the suite's own lines: a loguru record would
                # add most of a line's cost again.
                source = (record.filename, record.lineno, record.funcName)
                stream.emit(level, record.name, message, fields, source=source, exc_info=exc)
                return
            logger.opt(exception=exc).bind(
                _ops_logger=record.name, _ops_source=(record.filename, record.lineno, record.funcName), **fields
            ).log(level, message)
        except Exception:
            self.handleError(record)


@dataclass
class _Installation:
    section: LoggingSettings
    service: str
    sink: Any
    silence_server_access: bool
    stream: JsonStream
    handler_id: int
    removed_default: bool
    root_handlers: list[logging.Handler] | None = None
    root_level: int = logging.WARNING
    # Each logger whose console handlers were taken off: its handlers and propagation before.
    rerouted: dict[str, tuple[list[logging.Handler], bool]] = field(default_factory=dict)
    access_filter: logging.Filter | None = None


class _Silence(logging.Filter):
    """Drops every record of the logger it is added to (uvicorn's access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


_installed: _Installation | None = None
_lock = threading.Lock()
_default_id = 0


def configure(settings: Settings, *, sink: Any = None, silence_server_access: bool = False) -> JsonStream:
    """Install the JSON stream configured by ``settings.logging``; returns it.

    Args:
        settings: The root settings (``service_name`` goes on every line as ``service``).
        sink: Overrides ``settings.logging.sink``: a text stream (anything with ``write``), a
            function taking each line, or a path. For tests and benchmarks.
        silence_server_access: Silence uvicorn's access log (``uvicorn.access``) with a filter on
            that logger, nothing else changed: the feature asks for it when the suite's access
            log runs, unless ``logging.keep_server_access_log`` is true.
    """
    global _installed, active
    section = settings.logging
    with _lock:
        if (
            _installed is not None
            and _installed.section == section
            and _installed.service == settings.service_name
            and _installed.sink is sink
            and _installed.silence_server_access == silence_server_access
        ):
            return _installed.stream
        # Replacing an installation: loguru's default handler stays removed (it was ours to remove).
        removed_default = _reset_locked(restore_default=False)
        stream = build_stream(settings, sink=sink)
        renderer = stream.renderer
        removed_default = _remove_default_handler() or removed_default
        # loguru's own exception rendering shows local variables (diagnose): PII. Exceptions are
        # rendered as fields by the renderer instead.
        handler_id = logger.add(
            stream.sink, level=section.level, format=renderer.format, colorize=False, backtrace=False, diagnose=False
        )
        installation = _Installation(
            section, settings.service_name, sink, silence_server_access, stream, handler_id, removed_default
        )
        if section.stdlib:
            _route_stdlib(installation, LEVELS[section.root_level] if section.root_level else None)
            _register_fork_hook()
        if silence_server_access:
            # A filter on the logger, not its level or handlers: what the user set stays as it
            # is, and the filter survives uvicorn's dictConfig (uvicorn.run() after wrap()).
            installation.access_filter = _Silence()
            logging.getLogger(SERVER_ACCESS_LOGGER).addFilter(installation.access_filter)
        _installed = installation
        active = stream
        return stream


def build_stream(settings: Settings, *, sink: Any = None) -> JsonStream:
    """A JSON stream configured by ``settings.logging``, not installed: for tests and benchmarks,
    or to hand to a middleware or logger explicitly. ``sink`` as in :func:`configure`."""
    section = settings.logging
    renderer = JsonRenderer(
        redactor=get_redactor(section),
        max_field_length=section.max_field_length,
        max_line_length=section.max_line_length,
        source=section.source,
        service=settings.service_name,
    )
    return JsonStream(renderer, _writer(section, sink), section.level)


def reset() -> None:
    """Remove the JSON stream and restore loguru and ``logging`` as they were before :func:`configure`."""
    with _lock:
        _reset_locked()


def reroute() -> None:
    """Take console handlers off the loggers configured since :func:`configure` (it did the others).

    Run at the app's lifespan startup: by then the server has configured its logging even when it
    did so after ``wrap()`` (``uvicorn.run(app)`` in the app's module), and so has a framework set
    up late. Nothing happens without an installation routing the standard library.
    """
    with _lock:
        if _installed is not None and _installed.root_handlers is not None:
            _take_console_handlers(_installed)


def _after_fork() -> None:
    """In a forked child (gunicorn's workers under ``--preload``), the takeover again.

    A lock held by another thread at the fork would never be released in the child: the writer's
    and this module's are made anew. Then the console handlers the server gave its loggers since
    :func:`configure` (the worker is set up before the fork) are taken off, as :func:`reroute`
    does at lifespan startup, so that the server's first lines are JSON too.
    """
    global _lock
    _lock = threading.Lock()
    installation = _installed
    if installation is None:
        return
    after_fork = getattr(installation.stream.writer, "after_fork", None)
    if after_fork is not None:
        after_fork()
    reroute()


_fork_hook_registered = False


def _register_fork_hook() -> None:
    # Once per process: os.register_at_fork has no way back, and the hook does nothing without
    # an installation.
    global _fork_hook_registered
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)
        _fork_hook_registered = True


def mark_logged(exc: BaseException) -> None:
    """Note that ``exc`` was written to the stream with its traceback, on a request's line.

    The server's own report of that very exception (uvicorn's "Exception in ASGI application",
    logged after the request's context is gone) is then left out of the stream. The mark is an
    attribute on the exception: exceptions cannot be weakly referenced, and a table holding them
    would keep their frames alive.
    """
    try:
        setattr(exc, _LOGGED, True)
    except Exception:  # an exception class refusing attributes: its report stays, nothing lost
        pass


def _writer(section: LoggingSettings, sink: Any) -> Writer:
    if sink is not None and not isinstance(sink, str):
        return StreamWriter(sink) if hasattr(sink, "write") else CallableWriter(sink)
    target = sink if sink is not None else section.sink
    file_options = {
        name: _number_or_text(value)
        for name in ("rotation", "retention", "compression")
        if (value := getattr(section, name)) is not None
    }
    std = target in ("stdout", "stderr")
    if section.enqueue or (file_options and not std):
        if std:
            return LoguruWriter(getattr(sys, target), enqueue=section.enqueue)
        return LoguruWriter(target, enqueue=section.enqueue, encoding="utf-8", **file_options)
    if std:
        return StreamWriter(std=target)
    return FileWriter(target)


def _reset_locked(*, restore_default: bool = True) -> bool:
    """Undo the installation; returns whether loguru's default handler is still to be put back."""
    global _installed, active, _default_id
    installation, _installed = _installed, None
    active = None
    if installation is None:
        return False
    try:
        logger.remove(installation.handler_id)
    except ValueError:  # someone called logger.remove() already
        pass
    installation.stream.complete()
    installation.stream.close()
    if installation.root_handlers is not None:
        root = logging.getLogger()
        root.handlers = installation.root_handlers
        root.setLevel(installation.root_level)
    for name, (handlers, propagate) in installation.rerouted.items():
        named = logging.getLogger(name)
        named.handlers = handlers
        named.propagate = propagate
    if installation.access_filter is not None:
        logging.getLogger(SERVER_ACCESS_LOGGER).removeFilter(installation.access_filter)
    if installation.removed_default and restore_default:
        _default_id = logger.add(sys.stderr)
        return False
    return installation.removed_default


def _remove_default_handler() -> bool:
    # loguru starts with handler 0 writing plain text to stderr: one stream means JSON only.
    # (After a reset, the default handler put back has another id, remembered here.)
    try:
        logger.remove(_default_id)
    except ValueError:
        return False
    return True


def _route_stdlib(installation: _Installation, level: int | None) -> None:
    root = logging.getLogger()
    installation.root_handlers = list(root.handlers)
    installation.root_level = root.level
    # Console handlers would print each line a second time, as plain text: they go. Any other
    # handler (a file, a log shipper, pytest's capture) keeps receiving the records.
    root.handlers = [InterceptHandler(), *(h for h in root.handlers if not _is_console(h))]
    if level is not None:  # only when the settings ask: the process's own level is the user's
        root.setLevel(level)
    _take_console_handlers(installation)


def _take_console_handlers(installation: _Installation) -> None:
    # Every logger, not only the servers': Django's "django" logger prints to stderr (DEBUG = True)
    # and propagates, so each of its records would come out twice, once as plain text.
    known = logging.Logger.manager.loggerDict
    names = sorted({*SERVER_LOGGERS, *(n for n, v in list(known.items()) if isinstance(v, logging.Logger))})
    # The handler lists set here, by logger: a logger handed one of them took a rerouted logger's
    # handlers (uvicorn's gunicorn worker gives uvicorn.error those of gunicorn.error, and stops
    # its propagation), so it is rerouted like that logger.
    ours = {id(logging.getLogger(n).handlers): n for n in installation.rerouted}
    for name in names:
        named = logging.getLogger(name)
        source = ours.get(id(named.handlers))
        if source is not None and source != name:
            installation.rerouted.setdefault(name, (list(named.handlers), named.propagate))
            named.handlers = list(named.handlers)
            named.propagate = logging.getLogger(source).propagate
            continue
        console = [h for h in named.handlers if _is_console(h)]
        if not console:
            # Nothing printed here, or silenced on purpose (uvicorn --no-access-log clears the
            # handlers of uvicorn.access and stops its propagation): left as it is.
            continue
        installation.rerouted.setdefault(name, (list(named.handlers), named.propagate))
        named.handlers = [h for h in named.handlers if h not in console]
        named.propagate = True


def _is_console(handler: logging.Handler) -> bool:
    return (
        type(handler) is logging.StreamHandler
        and getattr(handler, "stream", None) in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    ) or isinstance(handler, InterceptHandler)


def _number_or_text(value: str) -> Any:
    # loguru reads an int retention as "keep N files"; TOML gives strings for "10 days" and "5" alike.
    return int(value) if value.isdigit() else value
