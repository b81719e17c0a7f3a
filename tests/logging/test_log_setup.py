"""Installing the stream: sinks, idempotence, restoration, the standard library's loggers."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from loguru import logger as loguru_logger

import ops_observe
from ops_observe.logging import feature, setup
from ops_observe.logging.api import get_logger
from ops_observe.settings import load_settings

from log_lines import Lines


def parse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_stdout_and_stderr_sinks_follow_redirection(capsys: pytest.CaptureFixture[str]) -> None:
    setup.configure(load_settings({"logging": {"sink": "stdout"}}))
    get_logger("t").info("to stdout")
    setup.configure(load_settings({"logging": {"sink": "stderr"}}))
    get_logger("t").info("to stderr")
    out, err = capsys.readouterr()
    assert [d["message"] for d in parse(out)] == ["to stdout"]
    assert [d["message"] for d in parse(err)] == ["to stderr"]


def test_a_file_sink_is_utf8_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "app.log"
    setup.configure(load_settings({"logging": {"sink": str(path)}}))
    get_logger("t").info("héllo ✓", who="wörld")
    logging.getLogger("lib").warning("from logging")
    setup.reset()  # closes the file
    lines = parse(path.read_text(encoding="utf-8"))
    assert [(d["message"], d.get("who")) for d in lines] == [("héllo ✓", "wörld"), ("from logging", None)]


def test_rotation_and_retention_go_through_loguru(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    setup.configure(load_settings({"logging": {"sink": str(path), "rotation": "1 KB", "retention": "2"}}))
    log = get_logger("t")
    for i in range(100):
        log.info("line", i=i, padding="x" * 50)
    setup.reset()
    files = sorted(tmp_path.iterdir())
    assert 2 <= len(files) <= 3, files  # the current file and at most two rotated ones
    seen = [d["i"] for f in files for d in parse(f.read_text())]
    assert seen and max(seen) == 99 and len(set(seen)) == len(seen)


def test_enqueue_writes_every_line_once_flushed(tmp_path: Path) -> None:
    path = tmp_path / "queued.log"
    stream = setup.configure(load_settings({"logging": {"sink": str(path), "enqueue": True}}))
    log = get_logger("t")
    for i in range(200):
        log.info("queued", i=i)
    loguru_logger.info("from loguru")
    stream.complete()
    lines = parse(path.read_text())
    assert [d["i"] for d in lines if d["message"] == "queued"] == list(range(200))
    assert lines[-1]["message"] == "from loguru"


def test_configure_is_idempotent_and_replaces_on_change(lines: Lines) -> None:
    first = lines.install()
    assert lines.install() is first and setup.active is first
    get_logger("t").info("once")
    assert len(lines.raw) == 1  # one handler, not two
    second = lines.install({"logging": {"level": "DEBUG"}})
    assert second is not first and setup.active is second
    get_logger("t").debug("debug now")
    loguru_logger.debug("loguru debug too")
    assert [d["message"] for d in lines.parsed()] == ["once", "debug now", "loguru debug too"]


def test_reset_restores_loguru_and_logging() -> None:
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    keep = Keep()
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn_console = logging.StreamHandler(sys.stdout)
    root.addHandler(console)
    root.addHandler(keep)
    uvicorn.addHandler(uvicorn_console)
    uvicorn.propagate = False
    level = root.level
    try:
        lines = Lines()
        lines.install()
        assert console not in root.handlers and keep in root.handlers
        assert isinstance(root.handlers[0], setup.InterceptHandler)
        assert uvicorn.handlers == [] and uvicorn.propagate is True
        uvicorn.warning("started")  # root stays at WARNING: ops_observe does not lower it
        assert lines.one(logger="uvicorn.error")["message"] == "started"
        assert [r.getMessage() for r in kept] == ["started"]
        with pytest.raises(ValueError):
            loguru_logger.remove(setup._default_id)  # loguru's plain-text default handler is off
        setup.reset()
        assert setup.active is None
        assert console in root.handlers and keep in root.handlers and root.level == level
        assert not any(isinstance(h, setup.InterceptHandler) for h in root.handlers)
        assert uvicorn.handlers == [uvicorn_console] and uvicorn.propagate is False
        loguru_logger.remove(setup._default_id)  # and back on: it exists again
        setup._default_id = loguru_logger.add(sys.stderr)
        get_logger("t").info("after reset")
        assert all(json.loads(line)["message"] != "after reset" for line in lines.raw)
    finally:
        root.removeHandler(console)
        root.removeHandler(keep)
        uvicorn.removeHandler(uvicorn_console)
        uvicorn.propagate = True


def test_console_handlers_come_off_every_logger_and_go_back() -> None:
    """Django's ``django`` logger prints to stderr and propagates: each record would be written
    twice. Console handlers come off every logger; others (a file, an e-mail handler) stay."""
    django = logging.getLogger("django")
    console = logging.StreamHandler(sys.stderr)
    mail = logging.NullHandler()
    django.handlers = [console, mail]
    mine = logging.getLogger("mine.cli")
    mine_console = logging.StreamHandler(sys.stdout)
    mine.addHandler(mine_console)
    mine.propagate = False
    try:
        lines = Lines()
        lines.install()
        assert django.handlers == [mail] and django.propagate is True
        assert mine.handlers == [] and mine.propagate is True
        django.warning("Not Found: /nope/")
        mine.warning("progress")
        assert [d["logger"] for d in lines.parsed()] == ["django", "mine.cli"]
        setup.reset()
        assert django.handlers == [console, mail]
        assert mine.handlers == [mine_console] and mine.propagate is False
    finally:
        django.handlers = []
        mine.handlers = []
        mine.propagate = True


def test_reroute_takes_off_console_handlers_added_after_configure(lines: Lines) -> None:
    """``uvicorn.run(app)`` after ``wrap()``: uvicorn's dictConfig puts its handlers back; the
    lifespan startup hook takes them off again, and reset puts them back."""
    uvicorn = logging.getLogger("uvicorn")
    before = list(uvicorn.handlers), uvicorn.propagate
    lines.install()
    late = logging.StreamHandler(sys.stderr)
    uvicorn.handlers = [late]
    uvicorn.propagate = False
    try:
        setup.reroute()
        assert uvicorn.handlers == [] and uvicorn.propagate is True
        setup.reroute()  # idempotent
        setup.reset()
        setup.reroute()  # nothing installed: nothing done
        assert uvicorn.handlers == [late] and uvicorn.propagate is False
    finally:
        uvicorn.handlers, uvicorn.propagate = before


@pytest.mark.parametrize(
    ("settings", "silenced"),
    [
        ({"middleware": ["correlation", "logging"]}, True),
        ({"middleware": ["correlation", "logging"], "logging": {"keep_server_access_log": True}}, False),
        ({"middleware": ["correlation"], "logging": {"enabled": True}}, False),  # no access log of ours
    ],
    ids=["access-log", "kept", "no-access-log"],
)
def test_uvicorns_access_log_is_silenced_while_ours_runs(
    capsys: pytest.CaptureFixture[str], settings: dict[str, Any], silenced: bool
) -> None:
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    access.addHandler(keep)
    handlers, level, propagate = list(access.handlers), access.level, access.propagate
    try:
        ops_observe.wrap(
            lambda scope, receive, send: None,
            settings={**settings, "logging": {"sink": "stdout", **settings.get("logging", {})}},
        )
        access.info('127.0.0.1:5555 - "GET / HTTP/1.1" 200')
        assert seen == ([] if silenced else ['127.0.0.1:5555 - "GET / HTTP/1.1" 200'])
        # Nothing else of the logger changed: a filter is all.
        assert (access.handlers, access.level, access.propagate) == (handlers, level, propagate)
        feature.uninstall()
        access.info("after")
        assert seen[-1] == "after" and access.filters == []
    finally:
        access.removeHandler(keep)
        access.setLevel(logging.NOTSET)
        capsys.readouterr()


def test_stdlib_routing_can_be_turned_off(lines: Lines) -> None:
    lines.install({"logging": {"stdlib": False}})
    assert not any(isinstance(h, setup.InterceptHandler) for h in logging.getLogger().handlers)


def test_wrap_installs_the_stream_once_per_settings(capsys: pytest.CaptureFixture[str]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("this app speaks no lifespan")  # the suite answers it instead
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    settings = {"middleware": ["correlation", "logging"], "logging": {"sink": "stdout"}}
    first = ops_observe.wrap(app, settings=settings)
    stream = setup.active
    second = ops_observe.wrap(app, settings=settings)
    assert setup.active is stream is first.suite.state["logging.stream"] is second.suite.state["logging.stream"]
    ops_observe.wrap(app, settings={**settings, "service_name": "other"})
    assert setup.active is not stream

    async def lifespan() -> None:
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[Any] = []

        async def receive() -> Any:
            return messages.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        await first({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(lifespan())
    feature.uninstall()
    assert setup.active is None
    capsys.readouterr()


def test_a_failing_sink_never_fails_the_caller(capfd: pytest.CaptureFixture[str]) -> None:
    def broken(line: str) -> None:
        raise OSError("disk full")

    stream = setup.configure(load_settings({}), sink=broken)
    get_logger("t").info("lost")
    loguru_logger.info("lost too")
    logging.getLogger("lib").warning("lost as well")
    assert stream.write_errors == 3
    assert capfd.readouterr().err.count("could not be written") == 1


def test_an_unknown_level_name_is_written(lines: Lines) -> None:
    lines.install({"logging": {"level": "ERROR"}})
    get_logger("t").log("NOTICE", "custom")
    assert lines.one(message="custom")["level"] == "NOTICE"


def test_queued_lines_are_written_when_the_process_exits(tmp_path: Path) -> None:
    path = tmp_path / "exit.log"
    script = f"""
import ops_observe
from ops_observe import get_logger
ops_observe.wrap(lambda scope, receive, send: None, settings={{"logging": {{"enabled": True, "sink": {str(path)!r}, "enqueue": True}}, "middleware": []}})
for i in range(500):
    get_logger("t").info("queued", i=i)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert [d["i"] for d in parse(path.read_text())] == list(range(500))


def test_uvicorn_color_message_is_not_a_field(lines: Lines) -> None:
    lines.install()
    logging.getLogger("uvicorn.error").warning(
        "Started server process [%d]", 42, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )
    line = lines.one(logger="uvicorn.error")
    assert line["message"] == "Started server process [42]"
    assert "color_message" not in line


FILLING_DISK = """
import json, resource, signal, sys
from ops_observe.logging.render import JsonRenderer
from ops_observe.logging.stream import FileWriter, JsonStream

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: EFBIG, not a signal
stream = JsonStream(JsonRenderer(source=False), FileWriter(sys.argv[1]))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))  # the disk fills up within a line
for n in range(30):
    stream.emit("INFO", "t", f"line {n}", {"pad": "x" * 40})
full = stream.write_errors
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again (a rotated file removed)
for n in range(30, 40):
    stream.emit("INFO", "t", f"line {n}", {"pad": "x" * 40})
print(json.dumps([full, stream.write_errors]))
"""


def test_a_line_the_file_could_not_take_is_counted_lost_and_never_written_later(tmp_path: Path) -> None:
    """Written or counted as lost, never both: a write cut short by a full disk leaves nothing behind
    (neither the part written nor bytes kept for a later write), so the file stays whole lines."""
    path = tmp_path / "app.log"
    done = subprocess.run([sys.executable, "-c", FILLING_DISK, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    full, lost = json.loads(done.stdout)
    assert full == lost > 0  # every loss happened while the disk was full
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    messages = [line["message"] for line in parse(text)]
    assert len(messages) + lost == 40
    kept = len(messages) - 10
    assert messages == [f"line {n}" for n in range(kept)] + [f"line {n}" for n in range(30, 40)]


def test_a_server_logger_handed_the_handlers_of_a_rerouted_one_is_rerouted_too(lines: Lines) -> None:
    """uvicorn's gunicorn worker gives uvicorn.error the very handler list of gunicorn.error and
    stops its propagation; the suite emptied that list (gunicorn --preload: in the master). Its
    lines then still reach the stream, and reset puts back what the worker set."""
    gunicorn, uvicorn = logging.getLogger("gunicorn.error"), logging.getLogger("uvicorn.error")
    before = [(list(x.handlers), x.propagate, x.level) for x in (gunicorn, uvicorn)]
    gunicorn.handlers, gunicorn.propagate = [logging.StreamHandler(sys.stderr)], False  # gunicorn's logging
    try:
        lines.install()
        assert gunicorn.handlers == [] and gunicorn.propagate is True
        uvicorn.handlers = gunicorn.handlers  # what UvicornWorker.__init__ does
        uvicorn.propagate = False
        uvicorn.setLevel(logging.INFO)
        setup.reroute()
        uvicorn.info("Started server process [%d]", 42)
        assert lines.one(message="Started server process [42]")["logger"] == "uvicorn.error"
        assert uvicorn.propagate is True and uvicorn.handlers is not gunicorn.handlers
        setup.reset()
        assert uvicorn.handlers == [] and uvicorn.propagate is False
    finally:
        for logger_, (handlers, propagate, level) in zip((gunicorn, uvicorn), before, strict=True):
            logger_.handlers, logger_.propagate = handlers, propagate
            logger_.setLevel(level)


PRELOADED_WORKER = """
import logging, os, sys
from ops_observe.logging import setup
from ops_observe.settings import load_settings

gunicorn, uvicorn = logging.getLogger("gunicorn.error"), logging.getLogger("uvicorn.error")
gunicorn.addHandler(logging.StreamHandler(sys.stderr))  # gunicorn's own logging, in the master
gunicorn.propagate = False
gunicorn.setLevel(logging.INFO)
setup.configure(load_settings({"logging": {"sink": sys.argv[1]}}))  # the app, preloaded
uvicorn.handlers = gunicorn.handlers  # UvicornWorker.__init__, in the master, before the fork
uvicorn.setLevel(gunicorn.level)
uvicorn.propagate = False
pid = os.fork()
if pid == 0:
    uvicorn.info("Started server process [%d]", os.getpid())
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_forked_worker_routes_the_servers_lines_before_the_app_starts(tmp_path: Path) -> None:
    """gunicorn --preload: the suite's takeover is applied again in the forked child, so uvicorn's
    first lines (written before the lifespan startup reroutes) are JSON, not lost or plain text."""
    path = tmp_path / "app.log"
    done = subprocess.run(
        [sys.executable, "-c", PRELOADED_WORKER, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Started server process" not in done.stderr
    [line] = parse(path.read_text(encoding="utf-8"))
    assert (line["logger"], line["level"]) == ("uvicorn.error", "INFO")
    assert line["message"].startswith("Started server process [")
