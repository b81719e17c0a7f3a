"""The JSON stream: a renderer, a level and a writer; the fast path of the suite's own lines.

Lines come in two ways and leave through one writer, so they interleave in order:

- the suite's own API (``get_logger(...)`` loggers, the access log) calls :meth:`JsonStream.emit`
  (the access log: :meth:`JsonStream.start` and :meth:`JsonStream.finish`, its fields built clean), which renders and
  writes straight away: no loguru record is built for them, which is most of what a loguru call
  costs (see ``docs/logging.md``, Speed);
- everything written with ``loguru.logger`` (and, through :class:`~ops_observe.logging.setup.InterceptHandler`,
  with the standard library's ``logging``) reaches loguru's handler, whose ``format`` is the same
  renderer and whose sink is the same writer.

Writers: ``stdout`` / ``stderr`` / a plain file are written directly under a lock. With
``enqueue``, ``rotation``, ``retention`` or ``compression`` the writer is a loguru file or stream
sink of its own (a separate loguru core), so these behave exactly as loguru documents them.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ops_observe.logging.render import JsonRenderer

__all__ = ["LEVELS", "CallableWriter", "FileWriter", "JsonStream", "LoguruWriter", "StreamWriter", "Writer"]

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
"""loguru's level numbers by name."""

_NAMES = {number: name for name, number in LEVELS.items()}
_time_ns = time.time_ns
_getframe = sys._getframe


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def ascii_json(line: str) -> str:
    """``line`` with every non-ASCII character \\u-escaped: the same JSON, in ASCII only (non-ASCII
    characters only ever occur inside JSON strings, where such escapes are valid)."""
    return _NON_ASCII.sub(lambda m: json.dumps(m[0]).strip('"'), line)


class Writer(Protocol):
    """Where finished lines go."""

    def write(self, line: str) -> None: ...

    def close(self) -> None: ...


class _Locked:
    """A writer whose lines are serialised by a lock, made anew in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        """In a forked child: a lock another thread held at the fork would never be released."""
        self._lock = threading.Lock()


class StreamWriter(_Locked):
    """Writes to a text stream, or to ``sys.stdout`` / ``sys.stderr`` looked up at each write (so
    pytest's capture and ``redirect_stdout`` are followed), flushing each line."""

    def __init__(self, stream: Any = None, *, std: str | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.std = std

    def write(self, line: str) -> None:
        stream = self.stream if self.std is None else getattr(sys, self.std)
        with self._lock:
            try:
                stream.write(line)
            except UnicodeEncodeError:  # a stream that cannot take UTF-8 (LANG=C): \u escapes
                stream.write(ascii_json(line))
            stream.flush()

    def close(self) -> None:
        """Streams belong to whoever opened them: nothing to close."""


class FileWriter(_Locked):
    """Appends to a file (UTF-8), created with its folders if missing; closed by :meth:`close`.

    Unbuffered: each line is one ``os.write`` on a descriptor opened with ``O_APPEND``. A line is
    either written whole or not at all, never both lost and written: a write that fails (a full
    disk) cuts off what part of the line it wrote, and keeps nothing for later, where a buffered
    file would write the failed line's bytes after all on its next flush.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_CLOEXEC, 0o666)

    def write(self, line: str) -> None:
        try:
            data = line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: \u escapes, as a stream that cannot take it
            data = ascii_json(line).encode("ascii")
        with self._lock:
            fd = self._fd
            if fd < 0:
                raise ValueError(f"write to closed log file {self.path}")
            done = os.write(fd, data)
            if done != len(data):
                self._rest(fd, data, done)

    def _rest(self, fd: int, data: bytes, done: int) -> None:
        # A short write (the disk filled up within the line): the rest, or the part written cut off.
        try:
            while done < len(data):
                more = os.write(fd, data[done:])
                if not more:
                    raise OSError(errno.ENOSPC, "no byte written")
                done += more
        except OSError:
            _cut(fd, done)
            raise

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _cut(fd: int, written: int) -> None:
    """Take the ``written`` bytes of a line that could not be written whole off the end of the file,
    unless another writer appended after them (its line then stays; the torn one with it)."""
    try:
        end = os.lseek(fd, 0, os.SEEK_CUR)
        if os.fstat(fd).st_size == end:
            os.ftruncate(fd, end - written)
    except OSError:
        pass


class CallableWriter:
    """Hands each line (with its newline) to a function: for tests and custom transports."""

    def __init__(self, function: Callable[[str], Any]) -> None:
        self.function = function

    def write(self, line: str) -> None:
        self.function(line)

    def close(self) -> None:
        """Nothing to close."""


class LoguruWriter:
    """A loguru sink (file with rotation/retention/compression, stream, queue) on a loguru core of
    its own, fed finished lines with ``opt(raw=True)``: loguru's sink features, none of its formatting."""

    def __init__(self, target: Any, **options: Any) -> None:
        self.logger = _independent_logger()
        self.handler_id = self.logger.add(target, format="{message}", level=0, colorize=False, **options)
        self._raw = self.logger.opt(raw=True)
        self._closed = False
        # loguru drains the global logger's queues at exit; this core is ours to drain.
        atexit.register(self.close)

    def write(self, line: str) -> None:
        self._raw.log("INFO", line)

    def complete(self) -> None:
        """Wait until queued lines are written (``enqueue``)."""
        self.logger.complete()

    def close(self) -> None:
        """Write what is queued, then close the sink (files); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.logger.remove(self.handler_id)


def _independent_logger() -> Any:
    # loguru documents copy.deepcopy(logger) for a logger with its own handlers, but the copy fails
    # once a handler holds a stream. This is how loguru builds its own global logger.
    from loguru._logger import Core, Logger

    return Logger(  # type: ignore[no-untyped-call]
        core=Core(),  # type: ignore[no-untyped-call]
        exception=None,
        depth=0,
        record=False,
        lazy=False,
        colors=False,
        raw=False,
        capture=True,
        patchers=[],
        extra={},
    )


class JsonStream:
    """The process's JSON stream: what :func:`ops_observe.logging.setup.configure` installs.

    Args:
        renderer: Turns records into lines.
        writer: Receives each line, newline included.
        level: The lowest level written (a loguru level name).
    """

    def __init__(self, renderer: JsonRenderer, writer: Writer, level: str = "INFO") -> None:
        self.renderer = renderer
        self.writer = writer
        self.level = level
        self.levelno = LEVELS[level]
        self.write_errors = 0
        """Lines the writer failed to write."""
        self.on_write_error: list[Callable[[], object]] = []
        """Called once per line the writer failed to write (the logging feature counts them in a metric)."""

    def enabled(self, level: str | int) -> bool:
        """Whether a line at ``level`` would be written."""
        number = level if isinstance(level, int) else LEVELS.get(level, 0)
        return number >= self.levelno

    def emit(
        self,
        level: str | int,
        logger: str,
        message: Any,
        fields: Any = None,
        *,
        depth: int = 1,
        exc_info: Any = None,
        kind: str | None = None,
        source: tuple[str, int, str] | None = None,
    ) -> None:
        """Render and write one line, unless ``level`` is below the stream's.

        ``depth`` says whose source location goes on the line: 1 is the function that called
        this method, 2 its caller, and so on; 0 leaves the source out, and an explicit ``source``
        wins. ``exc_info`` is ``True`` (the exception being handled), an exception, or a ``(type, value, traceback)``.
        """
        if isinstance(level, str):
            # A level name loguru does not know is written (as loguru would refuse, never drop it).
            if LEVELS.get(level, self.levelno) < self.levelno:
                return
        else:
            if level < self.levelno:
                return
            level = _NAMES.get(level) or f"Level {level}"
        if source is None and depth and self.renderer.source:
            frame = _getframe(depth)
            code = frame.f_code
            source = (_basename(code.co_filename), frame.f_lineno, code.co_name)
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        now = _time_ns()
        second, nanos = divmod(now, 1_000_000_000)
        line = self.renderer.line(
            second,
            nanos // 1000,
            str(level),
            logger,
            message,
            fields,
            source,
            exc_info or None,
            kind,
        )
        try:
            self.writer.write(line + "\n")
        except Exception as exc:  # a full disk or a closed pipe must not fail the request that logs
            self._failed(exc)

    def start(self, level: str, logger: str, message: str, kind: str | None) -> dict[str, Any] | None:
        """The head of a line (:meth:`JsonRenderer.head`) for a caller that builds its fields clean
        and adds them itself before :meth:`finish` (the access log, once per request); ``None``
        when ``level`` is below the stream's. ``level`` one of :data:`LEVELS`, ``message`` already
        through the renderer's ``text``; no source location. The same line as :meth:`emit`'s,
        without a dict of the fields to merge."""
        if LEVELS[level] < self.levelno:
            return None
        second, nanos = divmod(_time_ns(), 1_000_000_000)
        try:
            return self.renderer.head(second, nanos // 1000, level, logger, message, kind)
        except Exception as error:  # a broken span of another library: the line, without its ids
            stamp = self.renderer.timestamp(second, nanos // 1000)
            head = {"timestamp": stamp, "level": level, "logger": logger, "message": message, "kind": kind}
            head["render_error"] = type(error).__name__
            return head

    def finish(self, out: dict[str, Any], fields: Any, exc: BaseException | None) -> None:
        """Write the line :meth:`start` began, ``fields`` (cleaned as any line's) and ``exc`` added."""
        renderer = self.renderer
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        try:
            line = renderer.tail(out, fields, exc_info, [])
        except Exception as error:  # a log call must never raise because of what it was given
            line = renderer.unrenderable(out.get("timestamp"), out.get("level"), out.get("logger"), error)
        try:
            self.writer.write(line + "\n")
        except Exception as error:
            self._failed(error)

    def sink(self, message: Any) -> None:
        """loguru's sink for the records of ``loguru.logger`` and ``logging`` (already rendered)."""
        # The rendered line was parked in the record for loguru's format: take it out, so that
        # handlers running after this one do not see it among the extras.
        message.record["extra"].pop("_ops_json", None)
        try:
            self.writer.write(str(message))
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        # Said once on the process's real stderr (the sink itself may be what is broken), then
        # counted, as loguru does for its sinks.
        self.write_errors += 1
        for hook in self.on_write_error:
            hook()
        if self.write_errors == 1:
            stderr = sys.__stderr__
            try:
                if stderr is not None:
                    stderr.write(f"ops_observe: a log line could not be written: {exc!r} (next ones are counted)\n")
            except Exception:
                pass

    def complete(self) -> None:
        """Wait until every queued line is written."""
        complete = getattr(self.writer, "complete", None)
        if complete is not None:
            complete()

    def close(self) -> None:
        """Close the writer (files); the stream must not be used afterwards."""
        self.writer.close()


_basenames: dict[str, str] = {}


def _basename(path: str) -> str:
    name = _basenames.get(path)
    if name is None:
        name = os.path.basename(path)
        if len(_basenames) < 4096:
            _basenames[path] = name
    return name
