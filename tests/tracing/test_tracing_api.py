"""The decorators and helpers of ``ops_observe``: spans around sync and async functions, ids, attributes."""

from __future__ import annotations

import asyncio
import os
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tracing_support import memory_runtime, restore_logging  # noqa: F401 - restore_logging is a fixture

import ops_observe
from ops_observe import (
    add_span_attribute,
    add_span_event,
    get_span_id,
    get_trace_id,
    trace_db_query,
    trace_external_call,
    trace_request,
)
from ops_observe.tracing.api import GENERATOR
from ops_observe.tracing.export import ExportQueue


def finished(runtime: Any, exporter: InMemorySpanExporter) -> Any:
    assert runtime.flush()
    return exporter.get_finished_spans()


def test_the_public_names_are_importable_from_ops_observe() -> None:
    for name in ("trace_request", "trace_db_query", "trace_external_call", "add_span_attribute", "add_span_event"):
        assert callable(getattr(ops_observe, name))
    assert ops_observe.get_trace_id is get_trace_id and ops_observe.get_span_id is get_span_id


def test_a_sync_function_gets_a_span_and_returns_its_value_unchanged() -> None:
    runtime, exporter = memory_runtime()
    marker = object()

    @trace_request("compute")
    def compute(x: int, *, y: int) -> tuple[int, object]:
        add_span_attribute("x", x)
        add_span_event("halfway", {"y": y})
        return x + y, marker

    assert compute(1, y=2) == (3, marker)
    assert compute.__name__ == "compute"
    (span,) = finished(runtime, exporter)
    assert span.name == "compute" and span.kind is SpanKind.INTERNAL
    assert span.attributes["x"] == 1
    assert span.events[0].name == "halfway" and span.events[0].attributes["y"] == 2
    assert span.attributes["code.function"].endswith("compute")
    runtime.shutdown()


def test_async_functions_nest_as_parent_and_children_with_the_summarys_attributes() -> None:
    runtime, exporter = memory_runtime()
    seen: dict[str, str | None] = {}

    @trace_db_query("SELECT", "users")
    async def get_user(user_id: str) -> dict[str, str]:
        seen["db_span"] = get_span_id()
        return {"id": user_id}

    @trace_external_call("stripe", "create_payment")
    def pay() -> str:
        return "paid"

    @trace_request()
    async def checkout() -> str:
        seen["trace"] = get_trace_id()
        user = await get_user("u1")
        return f"{user['id']} {pay()}"

    assert asyncio.run(checkout()) == "u1 paid"
    spans = {s.name: s for s in finished(runtime, exporter)}
    parent = spans["test_async_functions_nest_as_parent_and_children_with_the_summarys_attributes.<locals>.checkout"]
    db, stripe = spans["SELECT users"], spans["stripe create_payment"]
    assert db.parent.span_id == stripe.parent.span_id == parent.context.span_id
    assert format(parent.context.trace_id, "032x") == seen["trace"]
    assert format(db.context.span_id, "016x") == seen["db_span"]
    assert db.kind is stripe.kind is SpanKind.CLIENT
    assert (db.attributes["db.operation"], db.attributes["db.sql.table"]) == ("SELECT", "users")
    assert (stripe.attributes["peer.service"], stripe.attributes["external.operation"]) == ("stripe", "create_payment")
    runtime.shutdown()


@pytest.mark.parametrize("is_async", [False, True])
def test_an_exception_is_recorded_with_an_error_status_and_re_raised(is_async: bool) -> None:
    runtime, exporter = memory_runtime()

    class PaymentDeclined(Exception):
        pass

    if is_async:

        @trace_external_call("stripe", "charge")
        async def charge() -> None:
            raise PaymentDeclined("card declined")

        with pytest.raises(PaymentDeclined, match="card declined"):
            asyncio.run(charge())
    else:

        @trace_external_call("stripe", "charge")
        def charge_sync() -> None:
            raise PaymentDeclined("card declined")

        with pytest.raises(PaymentDeclined, match="card declined"):
            charge_sync()
    (span,) = finished(runtime, exporter)
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"].endswith("PaymentDeclined")
    runtime.shutdown()


def test_generator_functions_are_refused_with_a_clear_message() -> None:
    def numbers() -> Any:
        yield 1

    with pytest.raises(TypeError) as caught:
        trace_request("numbers")(numbers)
    assert str(caught.value) == GENERATOR.format(decorator="trace_request", name=numbers.__qualname__)


def test_outside_any_span_the_helpers_do_nothing_and_ids_are_none() -> None:
    assert get_trace_id() is None and get_span_id() is None
    add_span_attribute("k", "v")
    add_span_event("e")


@settings(max_examples=30, deadline=None)
@given(
    local=st.from_regex(r"[a-z]{1,10}", fullmatch=True), domain=st.from_regex(r"[a-z]{1,10}\.(com|org)", fullmatch=True)
)
def test_e_mail_addresses_in_attributes_never_reach_the_exporter(local: str, domain: str) -> None:
    runtime, exporter = memory_runtime()
    email = f"{local}@{domain}"

    @trace_request("signup")
    def signup() -> None:
        add_span_attribute("user.contact", f"mail {email} please")
        add_span_event("welcome.sent", {"to": email})

    signup()
    (span,) = finished(runtime, exporter)
    assert email not in str(dict(span.attributes)) + str([dict(e.attributes) for e in span.events])
    assert "[REDACTED:email]" in span.attributes["user.contact"]
    runtime.shutdown()


def test_after_a_fork_the_child_has_its_own_export_thread_and_an_empty_queue(tmp_path: Any) -> None:
    runtime, exporter = memory_runtime(schedule_delay=60.0)  # nothing leaves before an explicit flush

    @trace_request("before.fork")
    def before() -> None:
        return None

    before()  # queued in the parent, not exported yet
    queue = runtime.queue
    assert isinstance(queue, ExportQueue)
    result = tmp_path / "child"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a threaded process
        pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanups
        try:

            @trace_request("in.child")
            def child() -> None:
                return None

            child()
            flushed = runtime.flush()
            names = sorted(s.name for s in exporter.get_finished_spans())
            result.write_text(f"{flushed} {queue._thread.is_alive()} {','.join(names)}")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert result.read_text() == "True True in.child"  # the parent's queued span stayed in the parent
    assert [s.name for s in finished(runtime, exporter)] == ["before.fork"]
    runtime.shutdown()
