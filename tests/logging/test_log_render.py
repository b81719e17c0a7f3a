"""The JSON line: keys, timestamp, source, spans, exceptions, and valid JSON whatever it holds."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from ops_observe.correlation import correlation_id
from ops_observe.logging.api import get_logger
from ops_observe.logging.render import TRUNCATED, JsonRenderer, encoders
from ops_observe.redaction import default_redactor

from log_lines import Lines

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ENCODERS = sorted(encoders())


def test_a_line_has_the_contract_keys(lines: Lines) -> None:
    lines.install({"service_name": "billing"})
    log = get_logger("payments")
    before = dt.datetime.now(dt.timezone.utc)
    log.info("Processing payment", amount=100, method="stripe")
    line_no = sys._getframe().f_lineno - 1
    after = dt.datetime.now(dt.timezone.utc)
    [line] = lines.parsed()
    assert RFC3339_UTC.match(line["timestamp"]), line["timestamp"]
    when = dt.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert before - dt.timedelta(seconds=1) <= when <= after + dt.timedelta(seconds=1)
    assert line["level"] == "INFO"
    assert line["logger"] == "payments"
    assert line["message"] == "Processing payment"
    assert line["correlation_id"] is None
    assert line["service"] == "billing"
    assert (line["file"], line["line"], line["function"]) == (
        "test_log_render.py",
        line_no,
        "test_a_line_has_the_contract_keys",
    )
    assert (line["amount"], line["method"]) == (100, "stripe")
    assert "trace_id" not in line and "span_id" not in line and "kind" not in line


def test_the_correlation_id_and_the_active_span_are_on_the_line(lines: Lines) -> None:
    lines.install()
    tracer = TracerProvider().get_tracer("test")
    token = correlation_id.set("c0ffee")
    try:
        with tracer.start_as_current_span("work") as span:
            get_logger("t").info("inside")
            context = span.get_span_context()
    finally:
        correlation_id.reset(token)
    line = lines.one(message="inside")
    assert line["correlation_id"] == "c0ffee"
    assert line["trace_id"] == format(context.trace_id, "032x") and len(line["trace_id"]) == 32
    assert line["span_id"] == format(context.span_id, "016x") and len(line["span_id"]) == 16


def test_source_can_be_left_out(lines: Lines) -> None:
    lines.install({"logging": {"source": False}})
    get_logger("t").info("x")
    assert not {"file", "line", "function"} & set(lines.one(message="x"))


def test_fields_named_like_base_keys_are_renamed(lines: Lines) -> None:
    lines.install()
    get_logger("t").info("real", message="fake", level="fake", timestamp=1)
    line = lines.one(message="real")
    assert line["level"] == "INFO"
    assert (line["field_message"], line["field_level"], line["field_timestamp"]) == ("fake", "fake", 1)


def test_an_exception_is_structured_and_redacted(lines: Lines) -> None:
    lines.install()

    def fail() -> None:
        raise ValueError("no account for bob@example.com")

    try:
        fail()
    except ValueError:
        get_logger("t").exception("charge failed", order=7)
    line = lines.one(message="charge failed")
    assert line["level"] == "ERROR" and line["order"] == 7
    exc = line["exception"]
    assert exc["type"] == "ValueError"
    assert exc["message"] == "no account for [REDACTED:email]"
    assert "ValueError" in exc["traceback"] and "bob@example.com" not in json.dumps(line)
    assert [f["function"] for f in exc["frames"]][-2:] == ["test_an_exception_is_structured_and_redacted", "fail"]


def test_error_with_exc_info_and_an_exception_object(lines: Lines) -> None:
    lines.install()
    err = KeyError("k")
    get_logger("t").error("given", exc_info=err)
    assert lines.one(message="given")["exception"]["type"] == "KeyError"
    get_logger("t").error("nothing being handled", exc_info=True)
    assert "exception" not in lines.one(message="nothing being handled")


def test_levels_below_the_setting_are_dropped(lines: Lines) -> None:
    lines.install({"logging": {"level": "WARNING"}})
    log = get_logger("t")
    log.info("dropped")
    log.debug("dropped")
    log.warning("kept")
    log.log(35, "custom level")
    log.log(10, "dropped")
    assert [(d["level"], d["message"]) for d in lines.parsed()] == [("WARNING", "kept"), ("Level 35", "custom level")]


class Colour(enum.IntEnum):
    RED = 1


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('line\nbreak "quoted" {braces} \t tab', 'line\nbreak "quoted" {braces} \t tab'),
        (b"\xff\xfeok", "\\xff\\xfeok"),
        ("lone \udcff surrogate", "lone \udcff surrogate"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (2**70, 2**70),
        (Colour.RED, 1),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2026-01-02T03:04:05+00:00"),
        (
            {1: "int key", "nested": {"ok": [1, 2.5, None, True]}},
            {"1": "int key", "nested": {"ok": [1, 2.5, None, True]}},
        ),
        ({"a"}, ["a"]),
        (Unprintable(), "<unprintable Unprintable: RuntimeError>"),
    ],
)
def test_any_value_gives_valid_json(encoder: str, value: Any, expected: Any) -> None:
    renderer = JsonRenderer(encoder=encoder)
    line = renderer.line(1, 2, "INFO", "t", "m", {"v": value}, None)
    assert "\n" not in line
    assert json.loads(line)["v"] == expected


@pytest.mark.parametrize("encoder", ENCODERS)
@given(st.text(), st.dictionaries(st.text(max_size=10), st.text() | st.integers() | st.floats()))
def test_messages_and_fields_round_trip_when_nothing_is_redacted(
    encoder: str, message: str, fields: dict[str, Any]
) -> None:
    renderer = JsonRenderer(encoder=encoder, max_field_length=10**6)
    fields = {k: v for k, v in fields.items() if not k.startswith("_ops_") and k not in renderer_keys()}
    parsed = json.loads(renderer.line(0, 0, "INFO", "t", message, fields, None))
    assert parsed["message"] == message
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            assert parsed[key] == str(value)
        else:
            assert parsed[key] == value


def renderer_keys() -> frozenset[str]:
    from ops_observe.logging.render import BASE_KEYS

    return BASE_KEYS


@given(st.text(), st.binary())
def test_with_redaction_every_line_is_still_one_json_object(message: str, blob: bytes) -> None:
    renderer = JsonRenderer(redactor=default_redactor)
    line = renderer.line(0, 0, "INFO", "t", message, {"blob": blob, "text": message}, ("f.py", 1, "f"))
    assert "\n" not in line and isinstance(json.loads(line), dict)


def test_huge_values_are_cut_and_marked(lines: Lines) -> None:
    lines.install({"logging": {"max_field_length": 100}})
    get_logger("t").info("m" * 1000, big="x" * 10_000, small="ok", items=list(range(1000)))
    line = lines.parsed()[0]
    assert line["truncated"] is True
    assert line["message"] == "m" * 100 + TRUNCATED
    assert line["big"] == "x" * 100 + TRUNCATED
    assert line["small"] == "ok"
    assert len(line["items"]) == 257 and line["items"][-1] == "… 744 more"


def test_a_secret_cut_at_the_edge_is_still_redacted(lines: Lines) -> None:
    lines.install({"logging": {"max_field_length": 30}})
    get_logger("t").info("x" * 20 + " bob@example.com and more text")
    assert "bob@ex" not in lines.raw[0]


def test_a_line_over_the_limit_keeps_its_base_keys(lines: Lines) -> None:
    lines.install({"logging": {"max_field_length": 1000, "max_line_length": 2000}})
    get_logger("t").info("many", **{f"f{i}": "v" * 900 for i in range(10)})
    line = lines.parsed()[0]
    assert len(lines.raw[0]) < 2000
    assert line["message"] == "many" and line["truncated"] is True
    assert line["dropped_fields"] == sorted(f"f{i}" for i in range(10))


def test_deep_nesting_is_cut(lines: Lines) -> None:
    lines.install()
    deep: Any = "bottom"
    for _ in range(30):
        deep = {"d": deep}
    get_logger("t").info("deep", value=deep)
    text = lines.raw[0]
    assert "bottom" not in text and "[truncated:depth]" in text


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="not available"):
        JsonRenderer(encoder="simdjson")


def test_secret_keys_hide_falsy_numbers_and_odd_objects(lines: Lines) -> None:
    lines.install()

    class NoEquality:
        def __eq__(self, other: object) -> bool:
            raise TypeError("no comparisons")

        __hash__ = object.__hash__

        def __str__(self) -> str:
            return "odd"

    get_logger("t").info(
        "m", pin=0, otp={"password": 1, "nested": {"token": NoEquality()}}, empty_token="", flag_secret=True
    )
    line = lines.one(message="m")
    assert (line["pin"], line["empty_token"], line["flag_secret"]) == ("[REDACTED:secret]", "", True)
    assert line["otp"] == {"password": "[REDACTED:secret]", "nested": {"token": "[REDACTED:secret]"}}
    get_logger("t").info("n", data={"password": 0, "token": NoEquality(), "other": NoEquality()})
    assert lines.one(message="n")["data"] == {
        "password": "[REDACTED:secret]",
        "token": "[REDACTED:secret]",
        "other": "odd",
    }


def test_a_long_traceback_keeps_its_end(lines: Lines) -> None:
    lines.install({"logging": {"max_field_length": 300}})

    def recurse(n: int) -> None:
        if n == 0:
            raise LookupError("deepest")
        recurse(n - 1)

    try:
        recurse(40)
    except LookupError:
        get_logger("t").exception("deep")
    exc = lines.one(message="deep")["exception"]
    assert exc["traceback"].startswith("[truncated]…") and exc["traceback"].rstrip().endswith("LookupError: deepest")
    assert len(exc["frames"]) == 30 and exc["frames"][-1]["function"] == "recurse"


@given(st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1)))
def test_timestamps_are_exact_rfc3339_utc(when: dt.datetime) -> None:
    renderer = JsonRenderer()
    aware = when.replace(tzinfo=dt.timezone.utc)
    delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    text = renderer.timestamp(delta.days * 86400 + delta.seconds, delta.microseconds)
    assert RFC3339_UTC.match(text) and dt.datetime.fromisoformat(text.replace("Z", "+00:00")) == aware
    # A line writes the same timestamp (its own inline copy of the formatting).
    line = renderer.line(delta.days * 86400 + delta.seconds, delta.microseconds, "INFO", "t", "m", {}, None)
    assert json.loads(line)["timestamp"] == text
    assert renderer.timestamp(delta.days * 86400 + delta.seconds, 0) == aware.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
