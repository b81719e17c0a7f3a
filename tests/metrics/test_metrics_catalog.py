"""The per-app catalog: every metric of the summary, helpers, privacy, cardinality caps, pools, docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from metrics_support import (
    NS,
    call,
    label_values,
    restore_logging,  # noqa: F401 - an autouse fixture
    samples,
    scrape,
    value,
    wrap,
)
from prometheus_client import CollectorRegistry, generate_latest

import ops_observe
from ops_observe.metrics import reference
from ops_observe.metrics.catalog import Catalog
from ops_observe.metrics.settings import MetricsSettings
from ops_observe.metrics.specs import ID_LABELS, SPECS

ROOT = Path(__file__).resolve().parents[2]

SUMMARY_NAMES = """
http_requests_total http_request_duration_seconds http_request_size_bytes http_response_size_bytes http_errors_total
credit_balance credit_transactions_total credit_usage_total
subscription_status subscription_tier_distribution subscription_changes_total
db_connections_active db_connections_idle db_query_duration_seconds db_errors_total
llm_requests_total llm_tokens_total llm_request_duration_seconds llm_cost_total
auth_failures_total rate_limit_exceeded_total api_key_usage_total
user_registrations_total user_logins_total payment_transactions_total revenue_total organizations
organization_members feature_access_total webhook_deliveries_total
""".split()


def catalog(**overrides: object) -> Catalog:
    return Catalog(CollectorRegistry(), NS, MetricsSettings(**overrides), b"test-key")  # type: ignore[arg-type]


def exposition(cat: Catalog) -> str:
    return generate_latest(cat.registry).decode()


def test_every_summary_metric_exists_under_the_namespace() -> None:
    app = wrap(lambda scope, receive, send: None)
    cat = app.suite.state["metrics"]
    families = {name for name, _ in samples(scrape(app))} | set(_family_names(cat.registry))
    for name in SUMMARY_NAMES:
        assert getattr(ops_observe.metrics, name) is cat.metrics[name]
        base = name.removesuffix("_total")
        assert f"{NS}_{base}" in families, name
    assert len(SUMMARY_NAMES) == 30
    assert {s.name for s in SPECS} >= set(SUMMARY_NAMES)
    assert value(scrape(app), f"{NS}_build_info", service="svc", version="dev", commit="unknown",
                 build_date="unknown", environment="development") == 1  # fmt: skip
    assert value(scrape(app), "process_cpu_seconds_total") is not None


def _family_names(registry: CollectorRegistry) -> list[str]:
    return [metric.name for metric in registry.collect()]


def test_no_metric_exists_at_import() -> None:
    code = (
        "import ops_observe, ops_observe.current, ops_observe.metrics, ops_observe.metrics.feature, ops_observe.metrics.middleware\n"
        "from prometheus_client import REGISTRY\n"
        "names = [m.name for m in REGISTRY.collect()]\n"
        "assert not [n for n in names if n.startswith(('app_', 'http', 'llm', 'credit'))], names\n"
        "assert ops_observe.current.current_suite() is None\n"
        "try:\n    ops_observe.metrics.http_requests_total\nexcept AttributeError as e:\n    print('ok', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok") and "wrap(app)" in result.stdout


def test_module_attributes_follow_the_most_recently_wrapped_app() -> None:
    first = wrap(lambda scope, receive, send: None)
    assert ops_observe.metrics.current() is first.suite.state["metrics"]
    second = wrap(lambda scope, receive, send: None)
    assert ops_observe.metrics.http_requests_total is second.suite.state["metrics"].http_requests_total
    ops_observe.metrics.user_logins_total.labels(method="password", status="success").inc()
    assert value(scrape(second), f"{NS}_user_logins_total", method="password", status="success") == 1
    assert value(scrape(first), f"{NS}_user_logins_total", method="password", status="success") is None


def test_record_llm_usage_with_the_summary_keywords() -> None:
    cat = catalog()
    for status, prompt, completion in (("success", 120, 80), ("success", 30, 10), ("error", 0, 0)):
        cat.record_llm_usage(
            model="gpt-4o",
            provider="openai",
            user_id="user-1",
            organization_id="org-1",
            prompt_tokens=prompt,
            completion_tokens=completion,
            duration_seconds=1.5,
            cost_credits=0.25 if status == "success" else 0,
            status=status,
        )
    get = cat.registry.get_sample_value
    base = {"model": "gpt-4o", "provider": "openai"}
    assert get(f"{NS}_llm_requests_total", {**base, "status": "success"}) == 2
    assert get(f"{NS}_llm_requests_total", {**base, "status": "error"}) == 1
    assert get(f"{NS}_llm_tokens_total", {**base, "token_type": "prompt"}) == 150
    assert get(f"{NS}_llm_tokens_total", {**base, "token_type": "completion"}) == 90
    assert get(f"{NS}_llm_request_duration_seconds_count", base) == 3
    ids = {"user_id": cat.hasher("user-1"), "organization_id": cat.hasher("org-1")}
    assert get(f"{NS}_llm_cost_total", {**base, **ids}) == 0.5


def test_other_helpers() -> None:
    cat = catalog()
    get = cat.registry.get_sample_value
    cat.record_credit_transaction(
        transaction_type="usage", user_id="u", organization_id="o", amount=-5, balance=95, tier="pro", service="chat",
        model="m",
    )  # fmt: skip
    u, o = cat.hasher("u"), cat.hasher("o")
    assert (
        get(f"{NS}_credit_transactions_total", {"transaction_type": "usage", "user_id": u, "organization_id": o}) == 1
    )
    assert get(f"{NS}_credit_usage_total", {"service": "chat", "model": "m", "organization_id": o}) == 5
    assert get(f"{NS}_credit_balance", {"user_id": u, "organization_id": o, "tier": "pro"}) == 95
    cat.record_payment(status="succeeded", payment_method="card", tier="pro", amount_cents=4900)
    cat.record_payment(status="failed", payment_method="card", tier="pro", amount_cents=4900)
    assert get(f"{NS}_payment_transactions_total", {"status": "failed", "payment_method": "card", "tier": "pro"}) == 1
    assert get(f"{NS}_revenue_total", {"tier": "pro", "payment_method": "card"}) == 4900
    cat.record_subscription_change(
        change_type="upgrade", from_tier="free", to_tier="pro", organization_id="o", active=True
    )
    assert (
        get(f"{NS}_subscription_changes_total", {"change_type": "upgrade", "from_tier": "free", "to_tier": "pro"}) == 1
    )
    assert get(f"{NS}_subscription_status", {"organization_id": o, "tier": "pro"}) == 1
    cat.record_db_query(operation="select", table="users", duration_seconds=0.01)
    with pytest.raises(ZeroDivisionError), cat.db_query("update", "credits"):
        1 / 0  # noqa: B018 - the failing query
    assert get(f"{NS}_db_query_duration_seconds_count", {"operation": "select", "table": "users"}) == 1
    assert get(f"{NS}_db_query_duration_seconds_count", {"operation": "update", "table": "credits"}) == 1
    assert get(f"{NS}_db_errors_total", {"operation": "update", "error_type": "ZeroDivisionError"}) == 1


def test_labels_are_checked() -> None:
    cat = catalog()
    with pytest.raises(ValueError, match="takes the labels"):
        cat.credit_transactions_total.labels(transaction_type="x", user="u", organization_id="o")
    with pytest.raises(ValueError, match="takes 3 label values"):
        cat.credit_transactions_total.labels("x")
    cat.credit_transactions_total.labels("purchase", "u", "o").inc()
    assert "purchase" in exposition(cat)


ids = st.text(min_size=1, max_size=40)


@given(user=ids, org=ids, key=ids)
def test_no_raw_id_in_any_label(user: str, org: str, key: str) -> None:
    cat = catalog()
    cat.credit_transactions_total.labels(transaction_type="t", user_id=user, organization_id=org).inc()
    cat.credit_balance.labels(user_id=user, organization_id=org, tier="pro").set(1)
    cat.api_key_usage_total.labels(api_key_id=key, endpoint="/e").inc()
    cat.organization_members.labels(organization_id=org).set(3)
    cat.record_llm_usage(model="m", provider="p", user_id=user, organization_id=org, prompt_tokens=1,
                         completion_tokens=1, duration_seconds=0.1, cost_credits=1, status="ok")  # fmt: skip
    hashes = {cat.hasher(user), cat.hasher(org), cat.hasher(key)}
    seen = 0
    for metric in cat.registry.collect():
        for sample in metric.samples:
            for label, label_value in sample.labels.items():
                if label in ID_LABELS:
                    seen += 1
                    assert label_value in hashes
                    assert len(label_value) == 16 and all(c in "0123456789abcdef" for c in label_value)
    assert seen >= 8


def test_drop_mode_removes_id_labels_and_code_keeps_working() -> None:
    cat = catalog(id_labels="drop")
    cat.credit_transactions_total.labels(
        transaction_type="t", user_id="alice@example.com", organization_id="acme"
    ).inc()
    cat.record_llm_usage(model="m", provider="p", user_id="alice@example.com", organization_id="acme",
                         prompt_tokens=1, completion_tokens=1, duration_seconds=0.1, cost_credits=1, status="ok")  # fmt: skip
    text = exposition(cat)
    assert "alice" not in text and "acme" not in text
    assert cat.registry.get_sample_value(f"{NS}_credit_transactions_total", {"transaction_type": "t"}) == 1
    for label in ID_LABELS:
        assert f"{label}=" not in text


def test_hash_is_keyed() -> None:
    one, two = catalog(hash_key="one"), catalog(hash_key="two")
    assert one.hasher("user-1") != two.hasher("user-1")
    assert one.hasher("user-1") == catalog(hash_key="one").hasher("user-1")


def test_cardinality_cap_under_a_flood() -> None:
    cat = catalog(max_label_values=5, label_caps={"webhook_deliveries_total": 3})
    for i in range(1000):
        cat.feature_access_total.labels(feature=f"feature-{i}", tier="pro", result="allowed").inc()
        cat.webhook_deliveries_total.labels(event=f"event-{i}", status="ok").inc()
    text = exposition(cat)
    features = label_values(text, f"{NS}_feature_access_total", "feature")
    assert features == {f"feature-{i}" for i in range(5)} | {"__overflow__"}
    assert value(text, f"{NS}_feature_access_total", feature="__overflow__", tier="pro", result="allowed") == 995
    assert len(label_values(text, f"{NS}_webhook_deliveries_total", "event")) == 4
    overflow = f"{NS}_metrics_label_overflow_total"
    assert value(text, overflow, metric="feature_access_total", label="feature") == 995
    assert value(text, overflow, metric="webhook_deliveries_total", label="event") == 997


def test_http_endpoint_label_is_capped_too() -> None:
    async def named(scope, receive, send):  # type: ignore[no-untyped-def]
        scope["ops_observe.route"] = scope["path"]  # an app naming routes badly: one per raw path
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = wrap(named, max_label_values=4)
    call(app, *[f"/p/{i}" for i in range(20)])
    text = scrape(app)
    endpoints = label_values(text, f"{NS}_http_requests_total", "endpoint")
    assert len(endpoints) <= 5 and "__overflow__" in endpoints
    assert sum(v for (n, _), v in samples(text).items() if n == f"{NS}_http_requests_total") == 20


def test_observe_psycopg_pool(postgres_server: object) -> None:
    from psycopg_pool import ConnectionPool

    app = wrap(lambda scope, receive, send: None)
    cat = app.suite.state["metrics"]
    with ConnectionPool(postgres_server.dsn, min_size=2, max_size=4, open=True) as pool:  # type: ignore[attr-defined]
        pool.wait(timeout=30)
        cat.observe_pool(pool, name="main")
        with pool.connection():
            text = scrape(app)
            assert value(text, f"{NS}_db_connections_active", pool="main") == 1
            assert value(text, f"{NS}_db_connections_idle", pool="main") == 1
            assert value(text, f"{NS}_db_connections_max", pool="main") == 4
        text = scrape(app)
        assert value(text, f"{NS}_db_connections_active", pool="main") == 0
        assert value(text, f"{NS}_db_connections_idle", pool="main") == 2
    assert value(scrape(app), f"{NS}_db_connections_idle", pool="main") == 0


def test_observe_asyncpg_pool(postgres_server: object, need: Any) -> None:
    import asyncio
    import importlib.util

    need(importlib.util.find_spec("asyncpg"), "asyncpg is not installed (pip install asyncpg)")
    import asyncpg

    app = wrap(lambda scope, receive, send: None)
    cat = app.suite.state["metrics"]

    async def main() -> None:
        pool = await asyncpg.create_pool(postgres_server.dsn.split("?")[0], min_size=2, max_size=3)  # type: ignore[attr-defined]
        try:
            cat.observe_pool(pool, name="async")
            async with pool.acquire():
                text = scrape_in_loop(app)
                assert value(text, f"{NS}_db_connections_active", pool="async") == 1
                assert value(text, f"{NS}_db_connections_idle", pool="async") == 1
                assert value(text, f"{NS}_db_connections_max", pool="async") == 3
        finally:
            await pool.close()
        text = scrape_in_loop(app)
        assert value(text, f"{NS}_db_connections_max", pool="async") == 0  # closed: zeros, then forgotten

    def scrape_in_loop(target: object) -> str:
        # Read the exposition directly: a scrape through httpx needs its own event loop.
        exposition = app.suite.state["metrics.exposition"]
        return exposition.render("GET", "127.0.0.1", b"", "", "")[2].decode()  # type: ignore[no-any-return]

    asyncio.run(main())


def test_observe_pool_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="psycopg_pool or asyncpg"):
        catalog().observe_pool(object())


def test_docs_page_is_generated_from_the_catalog() -> None:
    page = (ROOT / "docs" / "metrics.md").read_text()
    assert page == reference.render(), (
        "docs/metrics.md is stale: python -m ops_observe.metrics.reference > docs/metrics.md"
    )
    for spec in SPECS:
        assert f"`ops_center_{spec.name}`" in page
