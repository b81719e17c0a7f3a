"""The ``infrastructure`` pack: the database, its pool, memory and the dependencies (the summary's "Infrastructure").

The "down" alerts read ``<ns>_health_check_status{check}`` (1 pass, 0.5 warn, 0 fail) of the
configured check: the checks whose plugin is ``redis`` or ``postgres``, the checks named
``keycloak`` or ``litellm``, or the one named by the alert's ``check`` override. Without such a
check the alert is listed disabled, with the reason, rather than waiting on a series that never
exists.
"""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, PackBuilder, ratio, regex, regex_escape
from ops_observe.alerts.rules import Alert, RuleGroup, Severity

GiB = 2**30


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The infrastructure alerts, on the pool gauges, the query histogram, memory and the health checks."""
    a = ctx.pack("infrastructure")
    by_pool = "instance, pool"

    def pool(name: str) -> str:
        return f"sum by ({ctx.group_by(by_pool)}) ({ctx.metric(name)})"

    db_errors = ctx.sum_rate(ctx.metric("db_errors_total"), "5m", "operation")
    db_queries = ctx.sum_rate(ctx.metric("db_query_duration_seconds_count"), "5m", "operation")
    llm = ctx.metric("llm_requests_total")
    llm_errors = ctx.metric("llm_requests_total", status="error")
    by_model = "model, provider"
    return [
        a.group(
            a.alert(
                "DatabaseConnectionPoolExhausted",
                f"{pool('db_connections_idle')} < $threshold and {pool('db_connections_active')} + "
                f"{pool('db_connections_idle')} >= {pool('db_connections_max')}",
                threshold=2, for_="5m", severity="critical",
                summary="Database pool {{ $labels.pool }} has fewer than $threshold idle connections and cannot grow.",
                description="Pool {{ $labels.pool }} of {{ $labels.instance }} has {{ $value | humanize }} "
                "idle connections (threshold $threshold) and is at its maximum size: queries wait for a connection.",
            ),
            a.alert(
                "DatabaseConnectionPoolWaiting", f"{pool('db_connections_waiting')} > $threshold", threshold=0,
                for_="5m", severity="warning",
                summary="Requests wait for a connection of database pool {{ $labels.pool }}.",
                description="{{ $value | humanize }} requests of {{ $labels.instance }} wait for a connection "
                "of pool {{ $labels.pool }} (threshold $threshold).",
            ),
            a.alert(
                "SlowDatabaseQueries",
                f"{ctx.quantile(0.95, ctx.metric('db_query_duration_seconds'), by='operation, table')} > $threshold",
                threshold=1.0, shown="seconds", for_="10m", severity="warning",
                summary="Database {{ $labels.operation }} queries on {{ $labels.table }} are slow "
                "(p95 above $threshold).",
                description="95 % of the {{ $labels.operation }} queries on {{ $labels.table }} "
                "({{ $labels.job }}) took up to {{ $value | humanizeDuration }} over the last 5 minutes "
                "(threshold $threshold).",
            ),
            a.alert(
                "HighDatabaseErrorRate", f"{ratio(db_errors, db_queries)} > $threshold", threshold=0.05,
                shown="percent", for_="5m", severity="warning",
                summary="More than $threshold of the database {{ $labels.operation }} queries fail.",
                description="{{ $value | humanizePercentage }} of the {{ $labels.operation }} queries of "
                "{{ $labels.job }} failed over the last 5 minutes (threshold $threshold).",
            ),
            a.alert(
                "HighMemoryUsage", ctx.ours(f"process_resident_memory_bytes{ctx.selector()} > $threshold"),
                threshold=2 * GiB, shown="bytes", for_="10m", severity="warning",
                summary="{{ $labels.instance }} uses more than $threshold of memory.",
                description="The process of {{ $labels.instance }} ({{ $labels.job }}) has "
                "{{ $value | humanize1024 }}B resident (threshold $threshold).",
            ),
            _down(a, ctx, "KeycloakDown", "Keycloak", name="keycloak", for_="2m"),
            _down(a, ctx, "RedisDown", "Redis", plugin="redis", for_="2m"),
            _down(a, ctx, "PostgreSQLDown", "PostgreSQL", plugin="postgres", for_="1m"),
            _down(a, ctx, "LiteLLMProxyDown", "the LiteLLM proxy", name="litellm", for_="5m"),
            a.alert(
                "HighLLMErrorRate",
                f"{ratio(ctx.sum_rate(llm_errors, '5m', by_model), ctx.sum_rate(llm, '5m', by_model))} > $threshold",
                threshold=0.05, shown="percent", for_="10m", severity="warning",
                summary="More than $threshold of the {{ $labels.model }} requests fail.",
                description="{{ $value | humanizePercentage }} of the LLM requests to {{ $labels.model }} "
                "({{ $labels.provider }}) failed over the last 5 minutes (threshold $threshold).",
            ),
            a.alert(
                "SlowLLMRequests",
                f"{ctx.quantile(0.95, ctx.metric('llm_request_duration_seconds'), by='model, provider')} > $threshold",
                threshold=30.0, shown="seconds", for_="10m", severity="warning",
                summary="{{ $labels.model }} answers slowly (p95 above $threshold).",
                description="95 % of the LLM requests to {{ $labels.model }} ({{ $labels.provider }}) took "
                "up to {{ $value | humanizeDuration }} over the last 5 minutes (threshold $threshold).",
            ),
        )
    ]  # fmt: skip


def _down(
    a: PackBuilder,
    ctx: AlertContext,
    alert: str,
    what: str,
    *,
    for_: str,
    plugin: str = "",
    name: str = "",
    severity: Severity = "critical",
) -> Alert:
    """A "down" alert on the health check status of the check(s) that probe ``what``."""
    override = ctx.alerts.rules.get(alert)
    checks = (override.check,) if override is not None and override.check else ctx.checks(plugin=plugin, name=name)
    how = f"plugin is {plugin!r}" if plugin else f"name is {name!r}"
    disabled = "" if checks else f"no health check whose {how} in health.checks (or set alerts.rules.{alert}.check)"
    matcher = regex("|".join(regex_escape(c) for c in checks)) if len(checks) > 1 else (checks or (name or plugin,))[0]
    return a.alert(
        alert, f"{ctx.metric('health_check_status', check=matcher)} == 0", for_=for_, severity=severity,
        disabled=disabled,
        summary=f"{what[:1].upper()}{what[1:]} is down (health check {{{{ $labels.check }}}} fails).",
        description=f"The health check {{{{ $labels.check }}}} of {{{{ $labels.instance }}}} ({{{{ $labels.job }}}}) "
        f"cannot reach {what}: every request that needs it fails.",
    )  # fmt: skip
