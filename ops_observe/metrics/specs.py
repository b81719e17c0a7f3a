"""The metric catalog as data: every metric's name, type, labels, help and an example query.

Nothing here creates a metric; :mod:`ops_observe.metrics.catalog` turns these specs into
prometheus-client objects against one wrapped app's registry, and
:mod:`ops_observe.metrics.reference` turns them into ``docs/metrics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]

ID_LABELS = frozenset({"user_id", "organization_id", "api_key_id"})
"""Labels that carry user, organisation or API-key identifiers: hashed or dropped, never raw."""

HTTP_LABELS = ("method", "endpoint", "status")


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the catalog.

    ``name`` has no namespace and, for counters, keeps its ``_total`` suffix as exposed.
    ``buckets`` names a bucket set (``latency``, ``size``, ``db``, ``llm``) for histograms.
    ``mode`` is prometheus-client's multiprocess mode of a gauge.
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    group: str
    query: str
    buckets: str = ""
    mode: str = "all"


def _c(name: str, help: str, labels: tuple[str, ...], group: str, query: str) -> MetricSpec:
    return MetricSpec(name, "counter", help, labels, group, query)


def _g(name: str, help: str, labels: tuple[str, ...], group: str, query: str, mode: str = "mostrecent") -> MetricSpec:
    return MetricSpec(name, "gauge", help, labels, group, query, mode=mode)


def _h(name: str, help: str, labels: tuple[str, ...], group: str, query: str, buckets: str) -> MetricSpec:
    return MetricSpec(name, "histogram", help, labels, group, query, buckets=buckets)


_P99 = "histogram_quantile(0.99, sum by (le) (rate({m}_bucket[5m])))"

SPECS: tuple[MetricSpec, ...] = (
    # -- HTTP (filled by the middleware) --------------------------------------------------------
    _c("http_requests_total", "HTTP requests by method, route template and status.", HTTP_LABELS, "http",
       "sum by (endpoint) (rate({m}[5m]))"),
    _h("http_request_duration_seconds", "Full duration of HTTP requests (long-lived streams excluded).", HTTP_LABELS,
       "http", _P99, "latency"),
    _h("http_request_size_bytes", "Request body bytes received.", HTTP_LABELS, "http",
       "sum(rate({m}_sum[5m])) / sum(rate({m}_count[5m]))", "size"),
    _h("http_response_size_bytes", "Response body bytes sent.", HTTP_LABELS, "http",
       "sum(rate({m}_sum[5m])) / sum(rate({m}_count[5m]))", "size"),
    _c("http_errors_total", "Unhandled exceptions by exception type (the response counts as 500 when none was sent).",
       (*HTTP_LABELS, "error_type"), "http", "sum by (error_type) (rate({m}[5m]))"),
    _g("http_requests_in_progress", "HTTP requests being handled right now.", ("method",), "http",
       "sum({m})", mode="livesum"),
    _h("http_time_to_first_byte_seconds", "Time until the response started (status and headers sent).", HTTP_LABELS,
       "http", _P99, "latency"),
    _h("http_stream_duration_seconds", "Full duration of long-lived streaming responses (server-sent events...).",
       HTTP_LABELS, "http", _P99, "stream"),
    # -- credit --------------------------------------------------------------------------------
    _g("credit_balance", "Current credit balance.", ("user_id", "organization_id", "tier"), "credit",
       "sum by (tier) ({m})"),
    _c("credit_transactions_total", "Credit transactions by type.", ("transaction_type", "user_id", "organization_id"),
       "credit", "sum by (transaction_type) (rate({m}[1h]))"),
    _c("credit_usage_total", "Credits consumed, by service and model.", ("service", "model", "organization_id"),
       "credit", "sum by (service, model) (increase({m}[1d]))"),
    # -- subscription --------------------------------------------------------------------------
    _g("subscription_status", "1 while an organisation's subscription is active, 0 otherwise.",
       ("organization_id", "tier"), "subscription", "count by (tier) ({m} == 1)"),
    _g("subscription_tier_distribution", "Subscribers per tier.", ("tier",), "subscription", "{m}"),
    _c("subscription_changes_total", "Upgrades, downgrades and cancellations.", ("change_type", "from_tier", "to_tier"),
       "subscription", "sum by (change_type) (increase({m}[1d]))"),
    # -- database ------------------------------------------------------------------------------
    _g("db_connections_active", "Connections of the pool in use.", ("pool",), "database", "{m}", mode="livesum"),
    _g("db_connections_idle", "Connections of the pool idle.", ("pool",), "database", "{m}", mode="livesum"),
    _g("db_connections_max", "Largest size of the pool.", ("pool",), "database",
       "sum({ns}_db_connections_active) / sum({m})", mode="livesum"),
    _g("db_connections_waiting", "Requests waiting for a connection of the pool.", ("pool",), "database", "{m} > 0",
       mode="livesum"),
    _h("db_query_duration_seconds", "Database query latency.", ("operation", "table"), "database", _P99, "db"),
    _c("db_errors_total", "Database errors by operation and error type.", ("operation", "error_type"), "database",
       "sum by (error_type) (rate({m}[5m]))"),
    # -- LLM -----------------------------------------------------------------------------------
    _c("llm_requests_total", "LLM requests by model, provider and status.", ("model", "provider", "status"), "llm",
       'sum by (model) (rate({m}{{status="error"}}[5m])) / sum by (model) (rate({m}[5m]))'),
    _c("llm_tokens_total", "LLM tokens by type (prompt, completion).", ("model", "provider", "token_type"), "llm",
       "sum by (model, token_type) (increase({m}[1h]))"),
    _h("llm_request_duration_seconds", "LLM request latency.", ("model", "provider"), "llm", _P99, "llm"),
    _c("llm_cost_total", "LLM cost in credits.", ("model", "provider", "user_id", "organization_id"), "llm",
       "sum by (organization_id) (increase({m}[1d]))"),
    # -- security (filled by the middleware) ---------------------------------------------------
    _c("auth_failures_total", "Authentication and authorisation failures (401, 403) by reason.",
       ("reason", "endpoint"), "security", "sum by (reason) (rate({m}[5m]))"),
    _c("rate_limit_exceeded_total", "Rate-limited requests (429).", ("endpoint",), "security",
       "sum by (endpoint) (rate({m}[5m]))"),
    _c("api_key_usage_total", "Requests made with an API key, by hashed key id.", ("api_key_id", "endpoint"),
       "security", "topk(10, sum by (api_key_id) (rate({m}[1h])))"),
    # -- business ------------------------------------------------------------------------------
    _c("user_registrations_total", "User sign-ups by tier and source.", ("tier", "source"), "business",
       "sum by (source) (increase({m}[1d]))"),
    _c("user_logins_total", "Login events by method and status.", ("method", "status"), "business",
       'sum(rate({m}{{status="failed"}}[5m]))'),
    _c("payment_transactions_total", "Payment outcomes.", ("status", "payment_method", "tier"), "business",
       'sum(rate({m}{{status="failed"}}[15m])) / sum(rate({m}[15m]))'),
    _c("revenue_total", "Revenue in cents.", ("tier", "payment_method"), "business", "sum(increase({m}[1d])) / 100"),
    _g("organizations", "Organisations (a gauge: the summary's `organizations_total` can go down).", ("tier",),
       "business", "sum({m})"),
    _g("organization_members", "Members per organisation.", ("organization_id",), "business",
       "topk(10, {m})"),
    _c("feature_access_total", "Feature access attempts by result.", ("feature", "tier", "result"), "business",
       'sum by (feature) (rate({m}{{result="denied"}}[1h]))'),
    _c("webhook_deliveries_total", "Webhook deliveries by event and status.", ("event", "status"), "business",
       'sum(rate({m}{{status="failed"}}[15m]))'),
    # -- the suite itself ----------------------------------------------------------------------
    _g("build_info", "Always 1; the labels say which build runs.",
       ("service", "version", "commit", "build_date", "environment"), "build", "{m}", mode="max"),
    _c("metrics_label_overflow_total", "Label values folded into the overflow value by the cardinality cap.",
       ("metric", "label"), "build", "sum by (metric, label) (increase({m}[1h])) > 0"),
)  # fmt: skip

BUCKETS: dict[str, tuple[float, ...]] = {
    "db": (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    "llm": (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0),
    "stream": (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
}
"""Fixed bucket sets; ``latency`` and ``size`` come from the settings."""
