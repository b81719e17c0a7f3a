"""The ``security`` pack: authentication failures, rate limiting, API keys (the summary's "Security").

The counters fill themselves from the HTTP answers: a 401 counts as ``missing_credentials`` or
``invalid_credentials``, a 403 as ``forbidden``, a 429 as rate limited.
"""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, ratio, regex
from ops_observe.alerts.rules import RuleGroup

NO_IDS = "metrics.id_labels is 'drop': API key usage has no key label to alert on"


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The security alerts, on the auth failure, rate limit, API key and login counters."""
    a = ctx.pack("security")
    failures = ctx.metric("auth_failures_total")
    refused = ctx.metric("auth_failures_total", reason=regex("forbidden|invalid_credentials"))
    logins, failed_logins = ctx.metric("user_logins_total"), ctx.metric("user_logins_total", status="failed")
    return [
        a.group(
            a.alert(
                "HighAuthFailureRate", f"{ctx.sum_rate(failures, '5m')} > $threshold", threshold=10, for_="5m",
                severity="warning",
                summary="More than $threshold requests a second fail authentication.",
                description="{{ $labels.job }} refuses {{ $value | humanize }} requests/s with 401 or 403 "
                "over the last 5 minutes (threshold $threshold/s).",
            ),
            a.alert(
                "RateLimitExceeded",
                f"{ctx.sum_increase(ctx.metric('rate_limit_exceeded_total'), '1m')} > $threshold",
                threshold=100, for_="2m", severity="warning",
                summary="More than $threshold requests a minute are rate limited.",
                description="{{ $labels.job }} answered 429 to {{ $value | humanize }} requests in the last "
                "minute (threshold $threshold).",
            ),
            a.alert(
                "SuspiciousAPIKeyUsage",
                f"{ctx.sum_increase(ctx.metric('api_key_usage_total'), '5m', 'api_key_id')} > $threshold",
                threshold=1000, for_="0m", severity="warning", disabled="" if ctx.id_labels else NO_IDS,
                summary="One API key made more than $threshold requests in 5 minutes.",
                description="API key {{ $labels.api_key_id }} (hashed) made {{ $value | humanize }} requests "
                "to {{ $labels.job }} in the last 5 minutes (threshold $threshold): a leaked key or a runaway client.",
            ),
            a.alert(
                "UnauthorizedAccessAttempts", f"{ctx.sum_increase(refused, '5m')} > $threshold", threshold=50,
                for_="0m", severity="warning",
                summary="More than $threshold requests in 5 minutes were refused with credentials.",
                description="{{ $labels.job }} refused {{ $value | humanize }} requests carrying wrong "
                "credentials or lacking the permission (401 with credentials, 403) in the last 5 minutes "
                "(threshold $threshold).",
            ),
            a.alert(
                "HighLoginFailureRatio",
                f"{ratio(ctx.sum_rate(failed_logins, '15m'), ctx.sum_rate(logins, '15m'))} > $threshold",
                threshold=0.5, shown="percent", for_="15m", severity="warning",
                summary="More than $threshold of the logins fail.",
                description="{{ $value | humanizePercentage }} of the logins to {{ $labels.job }} failed "
                "over the last 15 minutes (threshold $threshold): credential stuffing, or a broken login.",
            ),
        )
    ]  # fmt: skip
