"""get_logger, business_event, log_context, bind_request and log_call."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from loguru import logger as loguru_logger

import ops_observe
from ops_observe.correlation import correlation_id
from ops_observe.logging.api import BUSINESS_EVENT, bind_request, current_fields, get_logger, log_call, log_context
from ops_observe.logging.setup import InterceptHandler

from log_lines import Lines


def test_public_names_are_importable_from_the_package() -> None:
    assert ops_observe.get_logger is get_logger
    assert ops_observe.log_context is log_context
    assert ops_observe.log_call is log_call


def test_get_logger_defaults_to_the_calling_module() -> None:
    assert get_logger().name == __name__
    assert repr(get_logger("x")) == "StructuredLogger('x')"


def test_bound_fields_and_call_fields(lines: Lines) -> None:
    lines.install()
    log = get_logger("orders").bind(tenant="acme")
    log.info("placed", order_id=1)
    log.bind(order_id=2).warning("late", order_id=3)
    placed = lines.one(message="placed")
    assert (placed["tenant"], placed["order_id"]) == ("acme", 1)
    late = lines.one(message="late")
    assert (late["tenant"], late["order_id"], late["level"]) == ("acme", 3, "WARNING")


def test_business_events_are_a_distinct_kind(lines: Lines) -> None:
    lines.install()
    log = get_logger("billing")
    log.info("ordinary")
    log.business_event("subscription_upgraded", plan="pro", org_id=7)
    event = lines.one(kind=BUSINESS_EVENT)
    assert event["event"] == event["message"] == "subscription_upgraded"
    assert (event["plan"], event["org_id"], event["level"], event["logger"]) == ("pro", 7, "INFO", "billing")
    assert event["function"] == "test_business_events_are_a_distinct_kind"
    assert "kind" not in lines.one(message="ordinary")


@pytest.mark.parametrize("message", ["plain", "with {braces} and {0} and {", "100% {x!r}"])
def test_messages_are_never_formatted_with_the_fields(lines: Lines, message: str) -> None:
    lines.install()
    get_logger("t").info(message, x=1, braces=2)
    assert lines.parsed()[0]["message"] == message


def test_without_an_installed_stream_lines_go_through_loguru() -> None:
    records: list[Any] = []
    handler = loguru_logger.add(lambda m: records.append(m.record), level="DEBUG", format="{message}")
    try:
        get_logger("fallback").info("a {b} c", amount=5, message="field")
        get_logger("fallback").business_event("signed_up", plan="free")
    finally:
        loguru_logger.remove(handler)
    first, second = records
    assert first["message"] == "a {b} c"
    assert first["extra"]["amount"] == 5 and first["extra"]["message"] == "field"
    assert first["extra"]["_ops_logger"] == "fallback" and first["function"] == sys._getframe().f_code.co_name
    assert second["extra"]["_ops_kind"] == BUSINESS_EVENT and second["extra"]["event"] == "signed_up"


def test_loguru_logger_lines_join_the_same_stream(lines: Lines) -> None:
    lines.install()
    with log_context(request="r1"):
        loguru_logger.bind(k=1).warning("direct {}", "formatted")
    line = lines.one(message="direct formatted")
    assert (line["level"], line["k"], line["request"], line["logger"]) == ("WARNING", 1, "r1", __name__)


# -- log_context and bind_request ------------------------------------------------------------------


def test_log_context_nests_and_restores(lines: Lines) -> None:
    lines.install()
    log = get_logger("t")
    with log_context(a=1, b=1):
        with log_context(b=2, c=3) as ctx:
            assert current_fields() == {"a": 1, "b": 2, "c": 3} and ctx.fields == {"b": 2, "c": 3}
            log.info("inner", c=4)
        log.info("outer")
    log.info("none")
    assert {k: lines.one(message="inner")[k] for k in "abc"} == {"a": 1, "b": 2, "c": 4}
    outer = lines.one(message="outer")
    assert (outer["a"], outer["b"], "c" in outer) == (1, 1, False)
    assert not {"a", "b", "c"} & set(lines.one(message="none"))


def test_log_context_as_decorator_and_async_context_manager(lines: Lines) -> None:
    lines.install()
    log = get_logger("t")

    @log_context(job="sync")
    def sync_job() -> None:
        log.info("sync")

    @log_context(job="async")
    async def async_job() -> None:
        await asyncio.sleep(0)
        log.info("async")

    async def main() -> None:
        async with log_context(scope="block"):
            await async_job()
        sync_job()

    asyncio.run(main())
    assert lines.one(message="async")["job"] == "async" and lines.one(message="async")["scope"] == "block"
    assert lines.one(message="sync")["job"] == "sync" and "scope" not in lines.one(message="sync")
    assert sync_job.__name__ == "sync_job"


def test_log_context_is_per_task_and_follows_asgiref_threads(lines: Lines) -> None:
    lines.install()
    log = get_logger("t")

    def in_thread(n: int) -> None:
        log.info("thread", n=n)

    async def task(n: int) -> None:
        with log_context(task=n):
            await asyncio.sleep(0.001 * (n % 3))
            log.info("task", n=n)
            await sync_to_async(in_thread)(n)

    async def main() -> None:
        await asyncio.gather(*(task(n) for n in range(50)))

    asyncio.run(main())
    for line in lines.parsed():
        assert line["task"] == line["n"]
    assert len(lines.parsed()) == 100


def test_bind_request_outside_a_request_does_nothing() -> None:
    assert bind_request(user_id=1) is False
    assert current_fields() == {}


# -- log_call --------------------------------------------------------------------------------------


def test_log_call_sync(lines: Lines) -> None:
    lines.install({"logging": {"level": "DEBUG"}})

    @log_call
    def charge(customer_email: str, amount: int, password: str | None = None) -> int:
        return amount * 2

    assert charge("bob@example.com", 21, password="hunter2") == 42
    called, returned = lines.parsed()
    assert called["message"] == "test_log_call_sync.<locals>.charge called" and called["level"] == "DEBUG"
    assert called["arguments"] == {"customer_email": "[REDACTED:email]", "amount": 21, "password": "[REDACTED:secret]"}
    assert called["function"] == "charge" and called["file"] == "test_log_render.py".replace("render", "api")
    assert returned["duration_ms"] >= 0 and "result" not in returned and returned["level"] == "INFO"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_log_call_writes_the_exit_line_at_the_default_level(lines: Lines, is_async: bool) -> None:
    """At the default level (INFO) a decorated call is seen: its exit line, with its duration."""
    lines.install()

    def double(x: int) -> int:
        return x * 2

    async def double_async(x: int) -> int:
        return x * 2

    if is_async:
        assert asyncio.run(log_call(double_async)(21)) == 42
    else:
        assert log_call(double)(21) == 42
    (returned,) = lines.parsed()
    assert returned["message"].endswith(" returned") and returned["level"] == "INFO"
    assert returned["duration_ms"] >= 0 and "arguments" not in returned


def test_log_call_levels_are_configurable(lines: Lines) -> None:
    lines.install({"logging": {"level": "DEBUG"}})

    @log_call(level="WARNING", entry_level="INFO")
    def noisy(x: int) -> int:
        return x

    @log_call(level=10, entry_level=5)  # numbers too: DEBUG, and TRACE (under the stream's DEBUG)
    def quiet(x: int) -> int:
        return x

    noisy(1)
    quiet(2)
    assert [(d["message"].rsplit(" ", 1)[-1], d["level"]) for d in lines.parsed()] == [
        ("called", "INFO"),
        ("returned", "WARNING"),
        ("returned", "DEBUG"),
    ]


def test_log_call_async_with_options_and_an_exception(lines: Lines) -> None:
    lines.install({"logging": {"level": "DEBUG"}})
    log = get_logger("jobs")

    @log_call(logger=log, result=True)
    async def compute(x: int) -> dict[str, str]:
        return {"token": "abc", "x": str(x)}

    @log_call(arguments=False)
    async def explode(secret: str) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        await compute(1)
        with pytest.raises(RuntimeError, match="boom"):
            await explode("s3cret")

    asyncio.run(main())
    parsed = lines.parsed()
    assert [d["message"].rsplit(" ", 1)[-1] for d in parsed] == ["called", "returned", "called", "RuntimeError"]
    assert [d["level"] for d in parsed] == ["DEBUG", "INFO", "DEBUG", "ERROR"]
    assert parsed[1]["result"] == {"token": "[REDACTED:secret]", "x": "1"} and parsed[1]["logger"] == "jobs"
    assert "arguments" not in parsed[2]
    failed = parsed[3]
    assert failed["exception"]["type"] == "RuntimeError"
    assert failed["exception"]["message"] == "boom" and failed["duration_ms"] >= 0
    assert "s3cret" not in "".join(lines.raw)


def test_log_call_without_a_stream_still_calls_through() -> None:
    @log_call
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    assert async_to_sync(log_call(sync_to_async(add)))(2, 3) == 5


# -- the standard library ------------------------------------------------------------------------


def test_stdlib_logging_is_routed_with_the_same_context(lines: Lines) -> None:
    lines.install()
    token = correlation_id.set("req-1")
    try:
        with log_context(user_id="u7"):
            logging.getLogger("some.library").warning("retry %d of %s", 2, "GET", extra={"attempt": 2})
            try:
                {}["missing"]
            except KeyError:
                logging.getLogger("some.library").exception("lookup failed")
    finally:
        correlation_id.reset(token)
    retry = lines.one(message="retry 2 of GET")
    assert (retry["logger"], retry["level"], retry["attempt"]) == ("some.library", "WARNING", 2)
    assert (retry["correlation_id"], retry["user_id"]) == ("req-1", "u7")
    assert retry["function"] == "test_stdlib_logging_is_routed_with_the_same_context"
    assert lines.one(message="lookup failed")["exception"]["type"] == "KeyError"


def test_a_bad_format_in_a_library_still_gives_a_line(lines: Lines) -> None:
    lines.install()
    record = logging.LogRecord("lib", logging.ERROR, "lib.py", 3, "bad %d format", ("not a number",), None)
    InterceptHandler().emit(record)
    assert lines.one(logger="lib")["message"] == "'bad %d format' % ('not a number',)"


def test_stdlib_below_the_level_is_not_written(lines: Lines) -> None:
    lines.install({"logging": {"level": "WARNING"}})
    logging.getLogger("lib").info("quiet")
    logging.getLogger("lib").warning("loud")
    assert [d["message"] for d in lines.parsed()] == ["loud"]
