"""The promtool cases of every alert, one table per pack, read by ``test_rule_units.py``.

A :class:`Case` says, for one alert: the input series that fire it (taken from the real app's
exposition, see ``exposition.py``), the minute it fires at (the condition's onset plus its
``for``; a minute earlier it is silent), its labels and value, and input series that keep it
silent (healthy, or just under the threshold). Values use promtool's expanding notation at one
sample a minute: ``0+98x30`` is a counter growing by 98 a minute for 30 minutes, ``0x5 1+1x10``
is 0 up to minute 5 and then grows, ``_x5`` is 5 minutes without a sample, ``stale`` a series
that went away.

Onsets to keep in mind: a rate or increase needs two samples (the first minute), and a counter
starting at 0 is not extrapolated before its first sample, so a ratio of two such counters holds
from minute 1, while an absolute rate ramps up over its window. Gauges hold from minute 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exposition import Series, buckets, scrape_series, worker_series
from exposition import series as s

Inputs = tuple[tuple[Series, str], ...]

JOB = "ops-center"
TARGET = {"job": JOB, "instance": "10.0.0.7:8000"}
"""The labels Prometheus attaches to every scraped series of the cases (unless a series sets its own)."""
BY_JOB = {"job": JOB}
"""The labels of an alert that aggregates ``by (job)``."""
GiB, MiB = 2**30, 2**20


@dataclass(frozen=True)
class Case:
    """One alert's promtool cases; times are minutes from the first sample."""

    alert: str
    severity: str
    at: int
    fire: Inputs
    value: float
    labels: Mapping[str, str]
    quiet: Inputs
    quiet_at: tuple[int, ...] = ()
    """The minutes at which ``quiet`` stays silent; by default ``at - 1`` and ``at``."""
    quiet_also: tuple[Inputs, ...] = ()
    """Other quiet inputs, checked at the same minutes."""

    @property
    def silent_at(self) -> tuple[int, ...]:
        """When the quiet series are checked."""
        return self.quiet_at or (self.at - 1, self.at)


def histogram(name: str, per_minute: Mapping[float, float], minutes: int, **labels: str) -> Inputs:
    """The ``_bucket`` and ``_count`` series of one exposed histogram series, observing each minute
    ``per_minute[bound]`` values in the bucket that ends at ``bound``."""
    found = buckets(name, **labels)
    bounds = {float(b.labels["le"]) for b in found}
    assert set(per_minute) <= bounds, f"{sorted(set(per_minute) - bounds)} are not bounds of {name}"
    inputs = [
        (b, f"0+{sum(n for le, n in per_minute.items() if le <= float(b.labels['le']))}x{minutes}") for b in found
    ]
    count = s(f"{name}_count", **{k: v for k, v in found[0].labels.items() if k != "le"})
    return (*inputs, (count, f"0+{sum(per_minute.values())}x{minutes}"))


# -- api ----------------------------------------------------------------------------------------


def api() -> tuple[Case, ...]:
    """The ``api`` pack: errors, latency, traffic, exceptions, in-flight requests, clients gone."""
    ok = s("http_requests_total", endpoint="/items/{item_id}", status="200")
    boom = s("http_requests_total", endpoint="/boom", status="500")
    boom_ok = boom.with_(status="200")
    gone = s("http_requests_total", status="499")
    probe = s("http_requests_total", endpoint="/health/ready", status="503")
    errors = s("http_errors_total", error_type="RuntimeError")
    get, post = s("http_requests_in_progress", method="GET"), s("http_requests_in_progress", method="POST")
    items = {"endpoint": "/items/{item_id}", "status": "200"}

    def latency(per_minute: Mapping[float, float]) -> Inputs:
        return histogram("http_request_duration_seconds", per_minute, 30, **items)

    return (
        # 2 % of 5xx; quiet: 0.9 %, beside 499s (a client gone) and failing readiness probes.
        Case("HighAPIErrorRate", "warning", at=6, value=0.02, labels=BY_JOB,
             fire=((ok, "0+98x30"), (boom, "0+2x30")),
             quiet=((ok, "0+991x30"), (boom, "0+9x30"), (gone, "0+100x30"), (probe, "0+100x30"))),
        Case("CriticalAPIErrorRate", "critical", at=3, value=0.1, labels=BY_JOB,
             fire=((ok, "0+90x30"), (boom, "0+10x30")), quiet=((ok, "0+96x30"), (boom, "0+4x30"))),
        # p95 of requests all in (0.5 s, 0.75 s]: 0.7375 s; quiet: all in (0.25 s, 0.5 s], p95 0.4875 s.
        Case("SlowAPIResponse", "warning", at=11, value=0.7375, labels=BY_JOB,
             fire=latency({0.75: 10}), quiet=latency({0.5: 10})),
        # p95 4.875 s; quiet: 86 % under 1 s, 14 % in (1 s, 2.5 s]: p95 1.964 s, just under 2 s.
        Case("VerySlowAPIResponse", "critical", at=6, value=4.875, labels=BY_JOB,
             fire=latency({5.0: 10}), quiet=latency({1.0: 86, 2.5: 14})),
        # 6000 requests/s (already 1200/s in the first minute); quiet: 990/s.
        Case("HighAPIRequestRate", "warning", at=6, value=6000, labels=BY_JOB,
             fire=((ok, "0+360000x30"),), quiet=((ok, "0+59400x30"),)),
        # /boom fails 6 % of its requests, the service 0.6 %; quiet: 4 %, and a failing probe route.
        Case("HighEndpointErrorRate", "warning", at=6, value=0.06, labels={**BY_JOB, "endpoint": "/boom"},
             fire=((boom, "0+6x30"), (boom_ok, "0+94x30"), (ok, "0+900x30")),
             quiet=((boom, "0+4x30"), (boom_ok, "0+96x30"), (probe, "0+10x30"))),
        # 20 exceptions a minute: 60 in the window at minute 3; quiet: 9.5 in 5 minutes.
        Case("UnhandledExceptions", "warning", at=3, value=60, labels={**BY_JOB, "error_type": "RuntimeError"},
             fire=((errors, "0+20x30"),), quiet=((errors, "0+1.9x30"),), quiet_at=(2, 3, 20)),
        # 60 GET + 50 POST in flight on one instance; quiet: 100, not more.
        Case("HighRequestsInProgress", "warning", at=5, value=110, labels=TARGET,
             fire=((get, "60x30"), (post, "50x30")), quiet=((get, "60x30"), (post, "40x30"))),
        Case("HighClientDisconnectRate", "info", at=11, value=0.1, labels=BY_JOB,
             fire=((gone, "0+10x30"), (ok, "0+90x30")), quiet=((gone, "0+4x30"), (ok, "0+96x30"))),
    )  # fmt: skip


# -- billing ------------------------------------------------------------------------------------


def billing() -> tuple[Case, ...]:
    """The ``billing`` pack: credit balances and usage, payments, churn, LLM cost."""
    balance = s("credit_balance")
    usage = s("credit_usage_total")
    failed, succeeded = (
        s("payment_transactions_total", status="failed"),
        s("payment_transactions_total", status="succeeded"),
    )
    cancel = s("subscription_changes_total", change_type="cancellation")
    upgrade = cancel.with_(change_type="upgrade", from_tier="free", to_tier="pro")
    cost = s("llm_cost_total", provider="openai")
    return (
        Case("LowCreditBalance", "warning", at=5, value=50, labels={**balance.labels, **TARGET},
             fire=((balance, "50x10"),), quiet=((balance, "100x10"),)),
        Case("CriticalCreditBalance", "critical", at=1, value=5, labels={**balance.labels, **TARGET},
             fire=((balance, "5x10"),), quiet=((balance, "10x10"),)),
        # 2000 credits a minute: 62000 in the hour at minute 31; quiet: 996 an hour, once the hour is full.
        Case("HighCreditUsage", "warning", at=31, value=62000, labels={**BY_JOB, **usage.pick("organization_id")},
             fire=((usage, "0+2000x40"),), quiet=((usage, "0+16.6x100"),), quiet_at=(30, 31, 90)),
        # 5 failures in the sixth minute fire at once; quiet: 2.5 in 5 minutes.
        Case("PaymentFailed", "warning", at=6, value=5, labels=BY_JOB,
             fire=((failed, "0x5 5+5x10"),), quiet=((failed, "0+0.5x30"),), quiet_at=(5, 6, 20)),
        Case("HighPaymentFailureRatio", "warning", at=16, value=0.2, labels=BY_JOB,
             fire=((failed, "0+2x30"), (succeeded, "0+8x30")), quiet=((failed, "0+9x30"), (succeeded, "0+91x30"))),
        # 11 cancellations; quiet: 10 cancellations and many upgrades.
        Case("SubscriptionChurn", "warning", at=6, value=11, labels=BY_JOB,
             fire=((cancel, "0x5 11x10"),), quiet=((cancel, "0x5 10x10"), (upgrade, "0+100x15"))),
        # A day at 1 credit a minute, then 100 a minute: 15 minutes later the 15-minute rate is 47.6
        # times the day's average; quiet: 2.9 a minute.
        Case("LLMCostSpike", "warning", at=1456, value=(1500 / 900) / (3024 / 86400), labels=BY_JOB,
             fire=((cost, "0+1x1440 1540+100x30"),), quiet=((cost, "0+1x1440 1442.9+2.9x30"),)),
    )  # fmt: skip


# -- security -----------------------------------------------------------------------------------


def security() -> tuple[Case, ...]:
    """The ``security`` pack: auth failures, rate limiting, API keys, logins."""
    missing = s("auth_failures_total", reason="missing_credentials")
    invalid, forbidden = missing.with_(reason="invalid_credentials"), missing.with_(reason="forbidden")
    limited = s("rate_limit_exceeded_total")
    key = s("api_key_usage_total")
    failed, succeeded = s("user_logins_total", status="failed"), s("user_logins_total", status="success")
    return (
        # 60 refusals/s (12/s in the first minute); quiet: 5/s missing and 4.9/s forbidden.
        Case("HighAuthFailureRate", "warning", at=6, value=60, labels=BY_JOB,
             fire=((missing, "0+3600x30"),), quiet=((missing, "0+300x30"), (forbidden, "0+294x30"))),
        Case("RateLimitExceeded", "warning", at=3, value=150, labels=BY_JOB,
             fire=((limited, "0+150x30"),), quiet=((limited, "0+99x30"),)),
        Case("SuspiciousAPIKeyUsage", "warning", at=6, value=1500, labels={**BY_JOB, **key.pick("api_key_id")},
             fire=((key, "0x5 1500+1500x10"),), quiet=((key, "0x5 1000x10"),)),
        # 60 wrong or forbidden in the sixth minute; quiet: 50 of them, and 500 without credentials.
        Case("UnauthorizedAccessAttempts", "warning", at=6, value=60, labels=BY_JOB,
             fire=((invalid, "0x5 30x10"), (forbidden, "0x5 30x10")),
             quiet=((invalid, "0x5 25x10"), (forbidden, "0x5 25x10"), (missing, "0x5 500x10"))),
        Case("HighLoginFailureRatio", "warning", at=16, value=0.7, labels=BY_JOB,
             fire=((failed, "0+7x30"), (succeeded, "0+3x30")), quiet=((failed, "0+49x30"), (succeeded, "0+51x30"))),
    )  # fmt: skip


# -- infrastructure -----------------------------------------------------------------------------


def infrastructure() -> tuple[Case, ...]:
    """The ``infrastructure`` pack: the pool, queries, memory, the "down" alerts, the LLM provider."""
    active, idle = s("db_connections_active"), s("db_connections_idle")
    size, waiting = s("db_connections_max"), s("db_connections_waiting")
    pool = {**TARGET, **active.pick("pool")}
    query = {"operation": "select", "table": "users"}
    db_errors, db_queries = s("db_errors_total"), s("db_query_duration_seconds_count")
    rss, build = s("process_resident_memory_bytes"), s("build_info")
    llm_error = s("llm_requests_total", provider="openai", status="error")
    llm_ok = llm_error.with_(status="success")
    llm_labels = {**BY_JOB, **llm_error.pick("model", "provider")}

    def status(check: str) -> Series:
        return s("health_check_status", check=check)

    def down(alert: str, check: str, other: str, at: int) -> Case:
        # quiet: the check passes, while another check fails.
        return Case(alert, "critical", at=at, value=0, labels={**TARGET, "check": check},
                    fire=((status(check), "0x10"),), quiet=((status(check), "1x10"), (status(other), "0x10")))  # fmt: skip

    def db(per_minute: Mapping[float, float]) -> Inputs:
        return histogram("db_query_duration_seconds", per_minute, 30, **query)

    def llm(per_minute: Mapping[float, float]) -> Inputs:
        return histogram("llm_request_duration_seconds", per_minute, 30, provider="openai")

    return (
        # 1 idle connection and the pool at its maximum; quiet: the same, but the pool can grow to 20.
        Case("DatabaseConnectionPoolExhausted", "critical", at=5, value=1, labels=pool,
             fire=((active, "9x10"), (idle, "1x10"), (size, "10x10")),
             quiet=((active, "9x10"), (idle, "1x10"), (size, "20x10"))),
        Case("DatabaseConnectionPoolWaiting", "warning", at=5, value=3, labels=pool,
             fire=((waiting, "3x10"),), quiet=((waiting, "0x10"),)),
        # p95 2.425 s (all in (1 s, 2.5 s]); quiet: 0.975 s (all in (0.5 s, 1 s]).
        Case("SlowDatabaseQueries", "warning", at=11, value=2.425, labels={**BY_JOB, **query},
             fire=db({2.5: 10}), quiet=db({1.0: 10})),
        Case("HighDatabaseErrorRate", "warning", at=6, value=0.1, labels={**BY_JOB, "operation": "select"},
             fire=((db_errors, "0+10x30"), (db_queries, "0+100x30")),
             quiet=((db_errors, "0+4x30"), (db_queries, "0+100x30"))),
        # 3 GiB resident; quiet: 2 GiB, and another service's 3 GiB process (no build_info of ours).
        Case("HighMemoryUsage", "warning", at=10, value=3 * GiB, labels=TARGET,
             fire=((rss, f"{3 * GiB}x20"), (build, "1x20")),
             quiet=((rss, f"{2 * GiB}x20"), (build, "1x20"), (rss.target(job="billing-worker"), f"{3 * GiB}x20"))),
        down("KeycloakDown", "keycloak", "litellm", at=2),
        down("RedisDown", "cache", "db", at=2),
        down("PostgreSQLDown", "db", "cache", at=1),
        down("LiteLLMProxyDown", "litellm", "keycloak", at=5),
        Case("HighLLMErrorRate", "warning", at=11, value=0.1, labels=llm_labels,
             fire=((llm_error, "0+10x30"), (llm_ok, "0+90x30")), quiet=((llm_error, "0+4x30"), (llm_ok, "0+96x30"))),
        # p95 58.5 s (all in (30 s, 60 s]); quiet: 29.5 s.
        Case("SlowLLMRequests", "warning", at=11, value=58.5, labels=llm_labels,
             fire=llm({60.0: 10}), quiet=llm({30.0: 10})),
    )  # fmt: skip


# -- business -----------------------------------------------------------------------------------


def business() -> tuple[Case, ...]:
    """The ``business`` pack: sign-ups, logins, feature denials, webhooks."""
    build = s("build_info")
    registrations = s("user_registrations_total")
    logins, failed_logins = s("user_logins_total", status="success"), s("user_logins_total", status="failed")
    denied = s("feature_access_total", result="denied")
    granted = denied.with_(result="granted")
    webhook_failed = s("webhook_deliveries_total", status="failed")
    webhook_ok = s("webhook_deliveries_total", status="success")
    return (
        # No sign-up ever counted (the counter does not exist yet): 0, not absent.
        Case("LowUserRegistrations", "info", at=60, value=0, labels=BY_JOB,
             fire=((build, "1x70"),), quiet=((build, "1x70"), (registrations, "0+5x70"))),
        # No successful login for half an hour, many failed ones.
        Case("LowActiveUsers", "info", at=30, value=0, labels=BY_JOB,
             fire=((build, "1x40"), (logins, "0x40"), (failed_logins, "0+100x40")),
             quiet=((build, "1x40"), (logins, "0+20x40"))),
        Case("HighFeatureAccessDenials", "warning", at=31, value=6200, labels=BY_JOB,
             fire=((denied, "0+200x40"),), quiet=((denied, "0+1.6x100"), (granted, "0+1000x100")), quiet_at=(30, 31, 90)),
        Case("WebhookDeliveryFailures", "warning", at=6, value=120, labels=BY_JOB,
             fire=((webhook_failed, "0+20x30"),),
             quiet=((webhook_failed, "0+0.15x100"), (webhook_ok, "0+1000x100")), quiet_at=(5, 6, 90)),
    )  # fmt: skip


# -- runtime ------------------------------------------------------------------------------------


def runtime() -> tuple[Case, ...]:
    """The ``runtime`` pack: the process collector's CPU, file descriptors, restarts, memory."""
    build = s("build_info")
    cpu, rss, start = (
        s("process_cpu_seconds_total"),
        s("process_resident_memory_bytes"),
        s("process_start_time_seconds"),
    )
    open_fds, max_fds = s("process_open_fds"), s("process_max_fds")
    other = "billing-worker"  # a process of another service: no build_info of ours
    worker_start = worker_series("process_start_time_seconds")

    def workers(count: int) -> Inputs:
        """``count`` workers one after the other, 5 minutes each (then stale); the last one stays."""
        inputs = []
        for i in range(count):
            before = f"_x{5 * i} " if i else ""
            after = "40" if i == count - 1 else "4 stale"
            inputs.append((worker_start.with_(pid=str(101 + i)), f"{before}{1000 + 300 * i}x{after}"))
        return tuple(inputs)

    return (
        # 0.95 of a core: the 5-minute rate reaches it at minute 5; quiet: 0.89, and another service at 100 %.
        Case("HighProcessCPU", "warning", at=20, value=0.95, labels=TARGET,
             fire=((cpu, "0+57x40"), (build, "1x40")),
             quiet=((cpu, "0+53.4x40"), (build, "1x40"), (cpu.target(job=other), "0+60x40"))),
        Case("FileDescriptorsNearLimit", "warning", at=10, value=0.85, labels=TARGET,
             fire=((open_fds, "850x20"), (max_fds, "1000x20"), (build, "1x20")),
             quiet=((open_fds, "790x20"), (max_fds, "1000x20"), (build, "1x20"))),
        Case("FileDescriptorsExhausted", "critical", at=5, value=0.98, labels=TARGET,
             fire=((open_fds, "980x20"), (max_fds, "1000x20"), (build, "1x20")),
             quiet=((open_fds, "940x20"), (max_fds, "1000x20"), (build, "1x20"))),
        # Four restarts (minutes 4 to 7) fire at the fourth; quiet: three.
        Case("FrequentRestarts", "warning", at=7, value=4, labels=TARGET,
             fire=((start, "1000x3 1300 1400 1500 1600x10"), (build, "1x20")),
             quiet=((start, "1000x3 1300 1400 1500x10"), (build, "1x20"))),
        # Several workers: each restarted worker is a new series (a new pid), the old one goes stale.
        # Five workers in turn, 5 minutes each: four restarts at minute 20; quiet: three.
        Case("FrequentRestarts", "warning", at=20, value=4, labels=TARGET,
             fire=(*workers(5), (build, "1x40")), quiet=(*workers(4), (build, "1x40"))),
        # 100 MiB growing 10 MiB a minute: 2810 MiB within 4 hours at minute 31; quiet: 1000 MiB
        # growing 4 MiB a minute (less than double in 4 hours).
        Case("ProcessMemoryGrowing", "warning", at=31, value=(410 + 2400) * MiB, labels=TARGET,
             fire=((rss, f"{100 * MiB}+{10 * MiB}x40"), (build, "1x40")),
             quiet=((rss, f"{1000 * MiB}+{4 * MiB}x40"), (build, "1x40"))),
    )  # fmt: skip


# -- suite --------------------------------------------------------------------------------------


def suite() -> tuple[Case, ...]:
    """The ``suite`` pack: the target, traces, label caps, health checks, the multiprocess directory, scrapes."""
    build = s("build_info")
    up, scrape = scrape_series("up"), scrape_series("scrape_duration_seconds")
    dropped = s("tracing_spans_dropped_total", reason="queue_full")
    overflow = s("metrics_label_overflow_total")
    files = s("metrics_multiprocess_files")
    other = "billing-worker"  # a target of another service: no build_info of ours

    def status(check: str) -> Series:
        return s("health_check_status", check=check)

    return (
        # Our target stops answering at minute 6 (its build_info goes with it); quiet: another service's target.
        Case("TargetDown", "warning", at=11, value=0, labels=TARGET,
             fire=((up, "1x5 0x20"), (build, "1x5")),
             quiet=((up, "1x20"), (build, "1x20"), (up.target(job=other), "0x20"))),
        Case("ServiceMetricsAbsent", "critical", at=5, value=1, labels={},
             fire=((up, "0x10"),), quiet=((up, "1x10"), (build, "1x10"))),
        Case("TracingSpansDropped", "warning", at=11, value=5 / 60, labels={**BY_JOB, "reason": "queue_full"},
             fire=((dropped, "0+5x30"),),
             quiet=tuple((dropped.with_(reason=r), "0x30") for r in ("queue_full", "export_failed", "shutdown"))),
        # A new overflowing value at minute 6; quiet: values folded long ago, none since.
        Case("MetricLabelOverflow", "warning", at=6, value=1, labels={**BY_JOB, **overflow.pick("metric", "label")},
             fire=((overflow, "0x5 1+1x10"),), quiet=((overflow, "3x20"),)),
        Case("HealthCheckFailing", "warning", at=5, value=0, labels={**TARGET, "check": "db"},
             fire=((status("db"), "0x10"),), quiet=((status("db"), "0.5x10"), (status("cache"), "1x10"))),
        Case("HealthCheckDegraded", "info", at=15, value=0.5, labels={**TARGET, "check": "db"},
             fire=((status("db"), "0.5x20"),), quiet=((status("db"), "1x20"), (status("cache"), "0x20"))),
        Case("HealthCheckSlow", "warning", at=10, value=0.8, labels={**TARGET, "check": "db"},
             fire=((s("health_check_duration_seconds", check="db"), "0.8x20"),),
             quiet=((s("health_check_duration_seconds", check="db"), "0.4x20"),)),
        Case("HealthChecksNotReporting", "warning", at=15, value=1, labels={},
             fire=((build, "1x20"),), quiet=((build, "1x20"), (status("db"), "1x20"))),
        # 20 new files a minute; quiet: 9 an hour.
        Case("MultiprocessDirectoryGrowing", "warning", at=61, value=1200, labels=TARGET,
             fire=((files, "5+20x70"),), quiet=((files, "5+0.15x70"),)),
        Case("SlowMetricsScrape", "warning", at=15, value=1.5, labels=TARGET,
             fire=((scrape, "1.5x20"), (build, "1x20")),
             quiet=((scrape, "0.9x20"), (build, "1x20"), (scrape.target(job=other), "3x20"))),
    )  # fmt: skip


# -- slo ----------------------------------------------------------------------------------------


def slo() -> tuple[Case, ...]:
    """The ``slo`` pack: the burn-rate alerts of both objectives (through the recording rules), the budget."""
    ok = s("http_requests_total", endpoint="/items/{item_id}", status="200")
    boom = s("http_requests_total", endpoint="/boom", status="500")
    gone = s("http_requests_total", status="499")
    availability, latency = {**BY_JOB, "slo": "availability"}, {**BY_JOB, "slo": "latency"}
    items = {"endpoint": "/items/{item_id}", "status": "200"}

    def errors(per_mille: float, minutes: int) -> Inputs:
        """Requests of which ``per_mille`` in a thousand answer 500."""
        return ((ok, f"0+{1000 - per_mille:g}x{minutes}"), (boom, f"0+{per_mille:g}x{minutes}"))

    def slow(per_mille: float, minutes: int) -> Inputs:
        """Requests of which ``per_mille`` in a thousand take more than the 0.5 s threshold."""
        return histogram("http_request_duration_seconds", {0.25: 1000 - per_mille, 1.0: per_mille}, minutes, **items)

    # Both windows are needed: a 3-minute burst of errors (the 5-minute window burns, the hour does
    # not), and an hour of errors that stopped (the hour burns, the last 5 minutes do not).
    burst = ((ok, "0+100x90"), (boom, "0x60 10 20 30 30x30"))
    stopped = ((ok, "0+100x90"), (boom, "0+3x55 165x30"))
    return (
        Case("AvailabilityBurnRate1h", "critical", at=3, value=0.02, labels=availability,
             fire=errors(20, 90), quiet=burst, quiet_also=(stopped,), quiet_at=(62, 63, 64, 65, 66)),
        # 1 % of 5xx; quiet: 0.5 % of 5xx, and 5 % of clients gone (499, no error).
        Case("AvailabilityBurnRate6h", "critical", at=16, value=0.01, labels=availability,
             fire=errors(10, 30), quiet=((ok, "0+945x30"), (boom, "0+5x30"), (gone, "0+50x30"))),
        # 1 % of 5xx for 5 hours that stopped: the 6 hours burn, the last 30 minutes do not.
        Case("AvailabilityBurnRate6h", "critical", at=16, value=0.01, labels=availability,
             fire=errors(10, 30), quiet=((ok, "0+99x340"), (boom, "0+1x300 300x40")), quiet_at=(335, 340)),
        Case("AvailabilityBurnRate1d", "warning", at=61, value=0.005, labels=availability,
             fire=errors(5, 70), quiet=errors(2.5, 70)),
        Case("AvailabilityBurnRate3d", "warning", at=181, value=0.002, labels=availability,
             fire=errors(2, 190), quiet=errors(0.9, 190)),
        Case("LatencyBurnRate1h", "critical", at=3, value=0.2, labels=latency,
             fire=slow(200, 30), quiet=slow(140, 30)),
        Case("LatencyBurnRate6h", "critical", at=16, value=0.1, labels=latency,
             fire=slow(100, 30), quiet=slow(50, 30)),
        Case("LatencyBurnRate1d", "warning", at=61, value=0.05, labels=latency,
             fire=slow(50, 70), quiet=slow(25, 70)),
        Case("LatencyBurnRate3d", "warning", at=181, value=0.02, labels=latency,
             fire=slow(20, 190), quiet=slow(9, 190)),
        # 0.08 % of 5xx spend 80 % of a 0.1 % budget; quiet: 0.07 % (30 % left).
        Case("ErrorBudgetLow", "info", at=61, value=1 - 0.0008 / 0.001, labels=availability,
             fire=errors(0.8, 70), quiet=errors(0.7, 70)),
        Case("ErrorBudgetExhausted", "warning", at=61, value=1 - 0.002 / 0.001, labels=availability,
             fire=errors(2, 70), quiet=errors(0.9, 70)),
    )  # fmt: skip


CASES: dict[str, Callable[[], tuple[Case, ...]]] = {
    "api": api, "billing": billing, "security": security, "infrastructure": infrastructure,
    "business": business, "runtime": runtime, "suite": suite, "slo": slo,
}  # fmt: skip
"""Each pack's cases (functions: the exposition is scraped when a test first asks)."""


# -- one customised run -------------------------------------------------------------------------

CUSTOM_ALERTS = {
    "job": JOB,
    "matchers": {"namespace": "prod"},
    "runbook_base": "https://runbooks.example.com/ops-center",
    "rules": {
        "HighAPIErrorRate": {"threshold": 0.02, "for": "10m", "severity": "critical", "labels": {"team": "payments"}},
        "LowCreditBalance": {"threshold": 50, "for": "10m"},
        "PostgreSQLDown": {"for": "3m", "severity": "warning", "labels": {"team": "dba"}},
        "HighMemoryUsage": {"threshold": GiB},
    },
    "slo": {"availability": 0.99, "routes": ["/boom"]},
}
"""``[ops_observe.alerts]`` of the customised run: a job and a namespace matcher, overrides, a per-route SLO."""
CUSTOM_TARGET = {**TARGET, "namespace": "prod"}
CUSTOM_BY = {"job": JOB, "namespace": "prod"}


def custom() -> tuple[Case, ...]:
    """Cases of the customised run: the overrides fire, and series of other jobs or namespaces do not."""
    ok = s("http_requests_total", endpoint="/items/{item_id}", status="200")
    boom = s("http_requests_total", endpoint="/boom", status="500")
    boom_ok, items_error = boom.with_(status="200"), ok.with_(status="500")
    balance, rss, db = s("credit_balance"), s("process_resident_memory_bytes"), s("health_check_status", check="db")
    staging = {"namespace": "staging"}
    return (
        # Threshold 2 %, for 10m, critical, team=payments: 3 % fires; 1.9 % does not, nor 50 % in staging.
        Case("HighAPIErrorRate", "critical", at=11, value=0.03, labels={**CUSTOM_BY, "team": "payments"},
             fire=((ok, "0+97x30"), (boom, "0+3x30")),
             quiet=((ok, "0+981x30"), (boom, "0+19x30"), (ok.target(**staging), "0+50x30"),
                    (boom.target(**staging), "0+50x30"))),
        Case("LowCreditBalance", "warning", at=10, value=40, labels={**balance.labels, **CUSTOM_TARGET},
             fire=((balance, "40x20"),), quiet=((balance, "50x20"), (balance.target(**staging), "1x20"))),
        Case("PostgreSQLDown", "warning", at=3, value=0, labels={**CUSTOM_TARGET, "check": "db", "team": "dba"},
             fire=((db, "0x10"),), quiet=((db, "1x10"), (db.target(job="billing-worker"), "0x10"))),
        # With alerts.job set, the job matcher (not build_info) says which processes are ours.
        Case("HighMemoryUsage", "warning", at=10, value=1.5 * GiB, labels=CUSTOM_TARGET,
             fire=((rss, f"{int(1.5 * GiB)}x20"),),
             quiet=((rss, f"{GiB}x20"), (rss.target(**staging), f"{3 * GiB}x20"),
                    (rss.target(job="billing-worker"), f"{3 * GiB}x20"))),
        # The SLO of /boom (99 %: 14.4 × 1 % = 14.4 % burns the hour); quiet: 10 % on /boom, 50 % on a
        # route without an SLO.
        Case("AvailabilityBurnRate1h", "critical", at=3, value=0.2,
             labels={**CUSTOM_BY, "endpoint": "/boom", "slo": "availability"},
             fire=((boom, "0+20x30"), (boom_ok, "0+80x30")),
             quiet=((boom, "0+10x30"), (boom_ok, "0+90x30"), (items_error, "0+50x30"), (ok, "0+50x30"))),
    )  # fmt: skip
