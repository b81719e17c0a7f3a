"""The ``api`` pack: the HTTP service's errors, latency and traffic (the summary's "API Performance").

Errors are ``5xx`` answers: a client that went away (``499``) is not a server error. The
suite's own endpoints (probes, scrapes) are left out: a readiness probe answering 503 while a
dependency is down says nothing about the API.
"""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, ratio, regex
from ops_observe.alerts.rules import RuleGroup

DISCLAIMER_499 = "499 (client gone) is not counted as an error."


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The API alerts, on ``<ns>_http_requests_total``, the latency histogram and the in-flight gauge."""
    a = ctx.pack("api")
    requests, errors = ctx.http(), ctx.http(status=regex("5.."))
    error_ratio = ratio(ctx.sum_rate(errors, "5m"), ctx.sum_rate(requests, "5m"))
    endpoint_ratio = ratio(ctx.sum_rate(errors, "5m", "endpoint"), ctx.sum_rate(requests, "5m", "endpoint"))
    gone_ratio = ratio(ctx.sum_rate(ctx.http(status="499"), "10m"), ctx.sum_rate(requests, "10m"))
    p95 = ctx.quantile(0.95, ctx.http("http_request_duration_seconds"))
    return [
        a.group(
            a.alert(
                "HighAPIErrorRate", f"{error_ratio} > $threshold", threshold=0.01, shown="percent", for_="5m",
                severity="warning",
                summary="More than $threshold of the API's requests fail with a 5xx.",
                description="{{ $value | humanizePercentage }} of the requests to {{ $labels.job }} answered "
                f"5xx over the last 5 minutes (threshold $threshold). {DISCLAIMER_499}",
            ),
            a.alert(
                "CriticalAPIErrorRate", f"{error_ratio} > $threshold", threshold=0.05, shown="percent", for_="2m",
                severity="critical",
                summary="More than $threshold of the API's requests fail with a 5xx.",
                description="{{ $value | humanizePercentage }} of the requests to {{ $labels.job }} answered "
                f"5xx over the last 5 minutes (threshold $threshold). {DISCLAIMER_499}",
            ),
            a.alert(
                "SlowAPIResponse", f"{p95} > $threshold", threshold=0.5, shown="seconds", for_="10m",
                severity="warning",
                summary="The API's 95th percentile latency is above $threshold.",
                description="95 % of the requests to {{ $labels.job }} took up to "
                "{{ $value | humanizeDuration }} over the last 5 minutes (threshold $threshold).",
            ),
            a.alert(
                "VerySlowAPIResponse", f"{p95} > $threshold", threshold=2.0, shown="seconds", for_="5m",
                severity="critical",
                summary="The API's 95th percentile latency is above $threshold.",
                description="95 % of the requests to {{ $labels.job }} took up to "
                "{{ $value | humanizeDuration }} over the last 5 minutes (threshold $threshold).",
            ),
            a.alert(
                "HighAPIRequestRate", f"{ctx.sum_rate(requests, '5m')} > $threshold", threshold=1000, for_="5m",
                severity="warning",
                summary="The API receives more than $threshold requests per second.",
                description="{{ $labels.job }} receives {{ $value | humanize }} requests/s over the last "
                "5 minutes (threshold $threshold/s): a traffic surge, a retry storm or a scraper.",
            ),
            a.alert(
                "HighEndpointErrorRate", f"{endpoint_ratio} > $threshold", threshold=0.05, shown="percent",
                for_="5m", severity="warning",
                summary="One route fails more than $threshold of its requests.",
                description="{{ $value | humanizePercentage }} of the requests to {{ $labels.endpoint }} "
                "({{ $labels.job }}) answered 5xx over the last 5 minutes (threshold $threshold), which the "
                f"service-wide error rate can hide. {DISCLAIMER_499}",
            ),
            a.alert(
                "UnhandledExceptions",
                f"{ctx.sum_increase(ctx.http('http_errors_total'), '5m', 'error_type')} > $threshold",
                threshold=10, for_="2m", severity="warning",
                summary="The app raises unhandled {{ $labels.error_type }} exceptions.",
                description="{{ $labels.job }} raised {{ $value | humanize }} unhandled {{ $labels.error_type }} "
                "exceptions in the last 5 minutes (threshold $threshold).",
            ),
            a.alert(
                "HighRequestsInProgress",
                f"sum by ({ctx.by}, instance) ({ctx.metric('http_requests_in_progress')}) > $threshold",
                threshold=100, for_="5m", severity="warning",
                summary="Requests pile up in {{ $labels.instance }}.",
                description="{{ $labels.instance }} ({{ $labels.job }}) is handling {{ $value | humanize }} "
                "requests at once (threshold $threshold): the app or a dependency is slower than the traffic.",
            ),
            a.alert(
                "HighClientDisconnectRate", f"{gone_ratio} > $threshold", threshold=0.05, shown="percent",
                for_="10m", severity="info",
                summary="More than $threshold of the clients go away before their answer.",
                description="{{ $value | humanizePercentage }} of the requests to {{ $labels.job }} ended "
                "with the client gone (499) over the last 10 minutes (threshold $threshold): clients time "
                "out before the service answers.",
            ),
        )
    ]  # fmt: skip
