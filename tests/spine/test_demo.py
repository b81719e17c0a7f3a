"""The demo app, wrapped, emits the telemetry the docs promise."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ops_observe
from ops_observe.demo import create_app


def run(app: Any, *requests: tuple[str, str, dict[str, Any] | None]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return [await client.request(method, path, json=body) for method, path, body in requests]

    return asyncio.run(go())


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_demo_routes_and_their_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"service_name": "ops-center", "middleware": ["correlation", "logging", "metrics"]}
    app = ops_observe.wrap(create_app(), settings=settings)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}], "user_id": "u-1"}
    responses = run(
        app,
        ("GET", "/items/1", None),
        ("GET", "/items/99", None),
        ("POST", "/credits/purchase", {"amount": 100, "user_id": "alice@example.com"}),
        ("POST", "/llm/chat", chat),
        ("GET", "/slow?seconds=0.01", None),
        ("GET", "/boom", None),
        ("GET", "/metrics", None),
    )
    assert [r.status_code for r in responses] == [200, 404, 200, 200, 200, 500, 200]
    text = responses[-1].text
    requests = samples(text, "ops_center_http_requests_total")
    assert requests[(("endpoint", "/items/{item_id}"), ("method", "GET"), ("status", "200"))] == 1
    assert requests[(("endpoint", "/boom"), ("method", "GET"), ("status", "500"))] == 1
    assert sum(samples(text, "ops_center_llm_tokens_total").values()) > 0
    assert sum(samples(text, "ops_center_payment_transactions_total").values()) == 1
    assert "alice@example.com" not in text, "user ids never appear raw as label values"
    out = capsys.readouterr().out
    assert "alice@example.com" not in out, "emails are redacted in the logs"
    lines = [json.loads(line) for line in out.splitlines()]
    purchase_id = responses[2].headers["x-correlation-id"]
    events = [line for line in lines if line.get("kind") == "business_event" and line["correlation_id"] == purchase_id]
    assert [e["event"] for e in events] == ["credit_purchase_initiated", "credit_purchase_completed"]
    assert events[1]["user_id"] == "[REDACTED:email]"
    access = [line for line in lines if line.get("kind") == "access"]
    assert [(a["route"], a["status"]) for a in access][-1] == ("/boom", 500)
