"""The ``suite`` pack: the observability itself: the target, traces, label caps, health checks, scrapes.

A silent target hides every other alert, so this pack has the ``absent()`` and ``up == 0``
rules; the others watch what the suite reports about its own work.
"""

from __future__ import annotations

import os

from ops_observe.alerts.context import AlertContext, regex_escape
from ops_observe.alerts.rules import RuleGroup

NO_TRACING = "tracing is off (not in middleware, or tracing.enabled is false)"
NO_CHECKS = "no health checks are configured (health.checks)"
SINGLE_PROCESS = "single process: metrics.multiprocess_dir and $PROMETHEUS_MULTIPROC_DIR are unset"


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The suite alerts, on ``up``, ``<ns>_build_info``, the drop and overflow counters and the health gauges."""
    a = ctx.pack("suite")
    sel = ctx.selector()
    build_info = ctx.metric("build_info")
    status, duration = ctx.metric("health_check_status"), ctx.metric("health_check_duration_seconds")
    # Without alerts.job, `up` of other jobs cannot be told apart: a target is ours when it
    # exposed <ns>_build_info in the last day.
    down = f"up{sel} == 0" if ctx.alerts.job else f"up{sel} == 0 and on (job, instance) max_over_time({build_info}[1d])"
    settings = ctx.settings
    multiprocess = settings.metrics.multiprocess_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    checks = "|".join(regex_escape(c) for c in ctx.health_checks)
    # An absent() alert has only the labels its selector matches by equality: the job, when set.
    job = " (job {{ $labels.job }})" if ctx.alerts.job else ""
    return [
        a.group(
            a.alert(
                "TargetDown", down, for_="5m", severity="warning",
                summary="Prometheus cannot scrape {{ $labels.instance }}.",
                description="The scrape of {{ $labels.instance }} ({{ $labels.job }}) has failed for 5 minutes: "
                "the instance is down, or /metrics refuses Prometheus (metrics.allow, metrics.bearer_token).",
            ),
            a.alert(
                "ServiceMetricsAbsent", f"absent({build_info})", for_="5m", severity="critical",
                summary="No target of the service reports metrics.",
                description=f"No series {ctx.ns}_build_info{sel} exists{job}: the service is down everywhere, or "
                "Prometheus does not scrape it; every other alert of the service is blind.",
            ),
            a.alert(
                "TracingSpansDropped",
                f"{ctx.sum_rate(ctx.metric('tracing_spans_dropped_total'), '5m', 'reason')} > $threshold",
                threshold=0, for_="10m", severity="warning", disabled="" if ctx.tracing else NO_TRACING,
                summary="Spans are dropped before export ({{ $labels.reason }}).",
                description="{{ $labels.job }} drops {{ $value | humanize }} spans/s ({{ $labels.reason }}): "
                "queue_full means the collector is too slow, export_failed that it refuses or is down.",
            ),
            a.alert(
                "MetricLabelOverflow",
                f"{ctx.sum_increase(ctx.metric('metrics_label_overflow_total'), '1h', 'metric, label')} > $threshold",
                threshold=0, for_="0m", severity="warning",
                summary="Label {{ $labels.label }} of {{ $labels.metric }} overflows its cap.",
                description="{{ $value | humanize }} new values of label {{ $labels.label }} of "
                "{{ $labels.metric }} were folded into the overflow value in the last hour: the label "
                "carries unbounded values (raise metrics.label_caps, or fix the label).",
            ),
            a.alert(
                "HealthCheckFailing", f"{status} == 0", for_="5m", severity="warning",
                disabled="" if checks else NO_CHECKS,
                summary="Health check {{ $labels.check }} fails.",
                description="The health check {{ $labels.check }} of {{ $labels.instance }} ({{ $labels.job }}) "
                "has failed for 5 minutes; if it is critical, the instance is out of the load balancer.",
            ),
            a.alert(
                "HealthCheckDegraded", f"{status} > 0 < 1", for_="15m", severity="info",
                disabled="" if checks else NO_CHECKS,
                summary="Health check {{ $labels.check }} warns.",
                description="The health check {{ $labels.check }} of {{ $labels.instance }} ({{ $labels.job }}) "
                "has answered with a warning for 15 minutes (see <health path>/detailed).",
            ),
            a.alert(
                "HealthCheckSlow", f"{duration} > $threshold", threshold=settings.health.timeout / 2,
                shown="seconds", for_="10m", severity="warning", disabled="" if checks else NO_CHECKS,
                summary="Health check {{ $labels.check }} takes more than $threshold.",
                description="The health check {{ $labels.check }} of {{ $labels.instance }} took "
                "{{ $value | humanizeDuration }} (threshold $threshold, half its timeout): the dependency "
                "is slow, and readiness probes are about to time out.",
            ),
            a.alert(
                "HealthChecksNotReporting",
                f"absent({ctx.metric('health_check_status', check=('=~', checks or '.+'))}) "
                f"and on () count({build_info}) > 0",
                for_="15m", severity="warning", disabled="" if checks else NO_CHECKS,
                summary="The service reports no health check results.",
                description=f"The service{job} is scraped but exposes no {ctx.ns}_health_check_status series: nothing "
                "probes its readiness endpoint, so the 'down' alerts cannot see a failing dependency.",
            ),
            a.alert(
                "MultiprocessDirectoryGrowing",
                f"delta({ctx.metric('metrics_multiprocess_files')}[1h]) > $threshold", threshold=10, for_="1h",
                severity="warning", disabled="" if multiprocess else SINGLE_PROCESS,
                summary="The metrics directory of {{ $labels.instance }} keeps growing.",
                description="The multiprocess metrics directory of {{ $labels.instance }} gained "
                "{{ $value | humanize }} files in the last hour (threshold $threshold): files of dead "
                "workers are not swept, and every scrape reads them all.",
            ),
            a.alert(
                "SlowMetricsScrape", ctx.ours(f"scrape_duration_seconds{sel} > $threshold"), threshold=1.0,
                shown="seconds", for_="15m", severity="warning",
                summary="Scraping {{ $labels.instance }} takes more than $threshold.",
                description="The scrape of {{ $labels.instance }} ({{ $labels.job }}) takes "
                "{{ $value | humanizeDuration }} (threshold $threshold): too many series, or a large "
                "multiprocess directory.",
            ),
        )
    ]  # fmt: skip
