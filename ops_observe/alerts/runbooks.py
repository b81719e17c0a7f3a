"""What to do when an alert fires: one runbook entry per alert of the first-party packs.

Each alert's ``runbook_url`` points at its section of ``docs/alerts.md``
(``<runbook_base>#<alert name lowercased>``), which :mod:`ops_observe.alerts.reference`
writes from these entries. Kept as data apart from the packs so that a pack stays a list of
rules, and a test fails when an alert has no entry. ``<ns>`` stands for the metric namespace.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runbook:
    """``means``: what is wrong; ``check``: what to look at first; ``mitigate``: how to stop the harm."""

    means: str
    check: str
    mitigate: str


_ERRORS_CHECK = (
    'Which routes fail: `sum by (endpoint, status) (rate(<ns>_http_requests_total{status=~"5.."}[5m]))`; '
    "which exceptions: `<ns>_http_errors_total` by `error_type`; the access log lines with `status` >= 500 "
    "and their `correlation_id`, and the traces of those requests (errors are always sampled). Then "
    "`<health path>/detailed`: a failing dependency explains most error bursts."
)
_ERRORS_MITIGATE = (
    "Roll back the last deploy if the errors started with it; otherwise take the failing dependency out of "
    "the path (feature flag, fallback, circuit breaker) or scale out if the errors are timeouts under load."
)
_LATENCY_CHECK = (
    "Which routes are slow: `histogram_quantile(0.95, sum by (endpoint, le) "
    "(rate(<ns>_http_request_duration_seconds_bucket[5m])))`; whether the database "
    "(`<ns>_db_query_duration_seconds`), an LLM (`<ns>_llm_request_duration_seconds`) or CPU saturation "
    "(`process_cpu_seconds_total`) moved at the same time; the slow requests' traces."
)
_LATENCY_MITIGATE = (
    "Scale out when every route is slow under more traffic; when one dependency is slow, shorten its "
    "timeouts and shed or queue the work that needs it; roll back a deploy that made it slower."
)
_BALANCE_CHECK = (
    "The user and organisation in the alert's labels (hashed ids: look them up with the same "
    "`metrics.hash_key`), their recent usage in `<ns>_credit_usage_total` and transactions in "
    "`<ns>_credit_transactions_total`; whether an automatic top-up failed (`<ns>_payment_transactions_total`)."
)
_DOWN_CHECK = (
    "`<health path>/detailed` shows the check's error and duration; from the service's host or pod, connect "
    "to the dependency by hand (same address as in `health.checks`); the dependency's own logs and metrics."
)
_BURN_CHECK = (
    "Which routes spend the budget: `<ns>:slo_errors:ratio_rate1h` by `endpoint` when the SLO is per route, "
    "else the API error or latency panels; what changed when the burn started (deploys, traffic, a "
    "dependency); the remaining budget `<ns>:slo_error_budget:remaining`."
)

RUNBOOKS: dict[str, Runbook] = {
    # -- api ------------------------------------------------------------------------------------
    "HighAPIErrorRate": Runbook(
        "More than the threshold (1 % by default) of the API's requests answered 5xx over 5 minutes. Clients "
        "that went away (499) and the suite's own endpoints (probes, scrapes) are not counted.",
        _ERRORS_CHECK,
        _ERRORS_MITIGATE,
    ),
    "CriticalAPIErrorRate": Runbook(
        "More than the threshold (5 % by default) of the API's requests answered 5xx over 5 minutes: a large "
        "part of the users see failures. It silences HighAPIErrorRate in the Alertmanager example.",
        _ERRORS_CHECK,
        _ERRORS_MITIGATE + " Page the owner of the failing dependency if it is not yours.",
    ),
    "SlowAPIResponse": Runbook(
        "The 95th percentile of the API's request duration is above the threshold (500 ms by default) over "
        "5 minutes: one request in twenty is slower than that.",
        _LATENCY_CHECK,
        _LATENCY_MITIGATE,
    ),
    "VerySlowAPIResponse": Runbook(
        "The 95th percentile of the API's request duration is above the threshold (2 s by default): clients "
        "are timing out. It silences SlowAPIResponse in the Alertmanager example.",
        _LATENCY_CHECK,
        _LATENCY_MITIGATE,
    ),
    "HighAPIRequestRate": Runbook(
        "The service receives more requests per second than the threshold (1000 by default): a traffic surge, "
        "a client retrying in a loop, or a scraper.",
        "Which routes and methods: `sum by (endpoint, method) (rate(<ns>_http_requests_total[5m]))`; which "
        "API keys (`<ns>_api_key_usage_total` by `api_key_id`); the access log's `client` and `user_agent`.",
        "Scale out when the traffic is legitimate; rate-limit or block the client or key when it is not; ask a "
        "retrying client to back off.",
    ),
    "HighEndpointErrorRate": Runbook(
        "One route answers 5xx to more than the threshold (5 % by default) of its requests, which a service-wide "
        "error rate can hide when the route gets little traffic.",
        "The route in the `endpoint` label: its `<ns>_http_errors_total` by `error_type`, its error log lines and "
        "traces, and the dependencies it calls.",
        "Roll back or switch off the feature behind the route; fix forward when the cause is clear.",
    ),
    "UnhandledExceptions": Runbook(
        "The app raised more unhandled exceptions of one type (label `error_type`) than the threshold in "
        "5 minutes; each became a 500 (or was cut short after the response started).",
        "The error log lines of that exception type, with their traceback, `correlation_id` and `route`; the "
        "traces of the failing requests; the last deploy.",
        "Fix or roll back the code path; when a dependency raises, handle its error and answer a proper status.",
    ),
    "HighRequestsInProgress": Runbook(
        "One instance is handling more requests at once than the threshold (100 by default): requests pile up "
        "because the app or a dependency is slower than the traffic.",
        "The instance's latency and CPU; `<ns>_db_connections_waiting` (requests waiting for a pool "
        "connection); slow dependencies in `<health path>/detailed`; a slow client streaming large bodies.",
        "Scale out; lower the timeouts of the slow dependency so that requests fail fast instead of queueing; "
        "restart a wedged instance after taking a thread dump (py-spy).",
    ),
    "HighClientDisconnectRate": Runbook(
        "More than the threshold (5 % by default) of the requests ended with the client gone before the answer "
        "(status 499): clients or a proxy time out before the service answers.",
        'Which routes (`<ns>_http_requests_total{status="499"}` by `endpoint`) and their latency; the timeout of '
        "the load balancer or proxy in front of the service.",
        "Make the slow routes faster or asynchronous (answer 202 and let the client poll); align the proxy's "
        "timeout with the routes' real duration.",
    ),
    # -- billing --------------------------------------------------------------------------------
    "LowCreditBalance": Runbook(
        "A user's credit balance (`<ns>_credit_balance`) is below the threshold (100 by default): they will run "
        "out soon.",
        _BALANCE_CHECK,
        "Notify the user or their organisation's admin (an e-mail or in-app banner); check that automatic "
        "top-up works for them. No operator action is needed when the user simply used their credits.",
    ),
    "CriticalCreditBalance": Runbook(
        "A user's credit balance is below the threshold (10 by default): their next requests are refused. It "
        "silences LowCreditBalance for the same user in the Alertmanager example.",
        _BALANCE_CHECK,
        "Contact the customer; grant a temporary credit when a failed top-up or a billing bug caused it.",
    ),
    "HighCreditUsage": Runbook(
        "One organisation used more credits in the last hour than the threshold (1000 by default): heavy "
        "legitimate use, a runaway script, or a leaked API key.",
        "`<ns>_credit_usage_total` of that organisation by `service` and `model`; its API keys' request rates "
        "(`<ns>_api_key_usage_total`); its LLM cost (`<ns>_llm_cost_total`).",
        "Contact the organisation; throttle or revoke a leaked key; apply the plan's spending cap.",
    ),
    "PaymentFailed": Runbook(
        "More payments failed in 5 minutes than the threshold (3 by default).",
        '`<ns>_payment_transactions_total{status="failed"}` by `payment_method`; the payment provider\'s status '
        "page and the error log lines of the payment calls (their traces name the provider call).",
        "If the provider is down, switch to a fallback provider or queue the charges for a retry; if only cards "
        "of one kind fail, contact the provider; fix and replay failed charges caused by a bug.",
    ),
    "HighPaymentFailureRatio": Runbook(
        "More than the threshold (10 % by default) of the payments failed over 15 minutes: even with little "
        "traffic, most payments are lost.",
        "The same as PaymentFailed: failures by `payment_method` and `tier`, the provider's status, the error "
        "log lines and traces of the payment calls.",
        "As for PaymentFailed; hold back a deploy of the payment path until the ratio is normal again.",
    ),
    "SubscriptionChurn": Runbook(
        "More subscriptions were cancelled in 24 hours than the threshold (10 by default).",
        "`<ns>_subscription_changes_total` by `change_type`, `from_tier` and `to_tier`; whether a price change, "
        "an outage or a failing payment (involuntary churn) preceded it.",
        "Tell the product and support teams; retry failed renewals; reach out to the customers who left.",
    ),
    "LLMCostSpike": Runbook(
        "LLM spending over the last 15 minutes runs at more than the threshold (3x by default) its 24-hour "
        "average: a new heavy feature, a loop calling the model, or abuse.",
        "`<ns>_llm_cost_total` and `<ns>_llm_tokens_total` by `model` and `organization_id`; a prompt that "
        'grew (`token_type="prompt"`); a retry loop in the error logs.',
        "Throttle the organisation or feature responsible; switch the feature to a cheaper model; fix the loop.",
    ),
    # -- security -------------------------------------------------------------------------------
    "HighAuthFailureRate": Runbook(
        "More requests a second than the threshold (10 by default) are refused with 401 or 403: a broken client "
        "or token issuer, or credential stuffing.",
        "`<ns>_auth_failures_total` by `reason` (`missing_credentials`, `invalid_credentials`, `forbidden`) and "
        "`endpoint`; the access log's `client` addresses; the identity provider's health (KeycloakDown).",
        "Block abusive clients at the edge; fix the client or rotate the signing keys when tokens are rejected "
        "after a change.",
    ),
    "RateLimitExceeded": Runbook(
        "More requests than the threshold (100 by default) were answered 429 in a minute, for 2 minutes.",
        "`<ns>_rate_limit_exceeded_total` by `endpoint`; which API keys (`<ns>_api_key_usage_total`) and clients.",
        "Contact the client that exceeds its quota; raise the limit when legitimate traffic grew.",
    ),
    "SuspiciousAPIKeyUsage": Runbook(
        "One API key (hashed, label `api_key_id`) made more requests in 5 minutes than the threshold (1000 by "
        "default): a leaked key or a runaway client.",
        "The key's routes and its organisation; whether the requests come from new addresses (access log).",
        "Rotate or revoke the key after telling its owner; rate-limit it meanwhile.",
    ),
    "UnauthorizedAccessAttempts": Runbook(
        "More requests carrying wrong credentials, or lacking the permission (401 with credentials, 403), than "
        "the threshold (50 by default) in 5 minutes: someone probes for access.",
        '`<ns>_auth_failures_total{reason=~"forbidden|invalid_credentials"}` by `endpoint`; the clients in the '
        "access log; whether one user or key is behind them.",
        "Block the source; lock the account under attack; review the permissions of the routes probed.",
    ),
    "HighLoginFailureRatio": Runbook(
        "More than the threshold (50 % by default) of the logins failed over 15 minutes: credential stuffing, or "
        "a broken login (identity provider, password hashing, a front-end change).",
        "`<ns>_user_logins_total` by `method` and `status`; KeycloakDown and the identity provider's logs; the "
        "clients behind the failures.",
        "Throttle or challenge (captcha) the sources of a stuffing attack; roll back a broken login change.",
    ),
    # -- infrastructure -------------------------------------------------------------------------
    "DatabaseConnectionPoolExhausted": Runbook(
        "A database pool has fewer idle connections than the threshold (2 by default) and is at its maximum "
        "size: new queries wait for a connection, and requests slow down or time out.",
        "`<ns>_db_connections_active`, `_idle`, `_max` and `_waiting` of the pool; slow queries "
        "(`<ns>_db_query_duration_seconds`); long transactions or locks in the database (`pg_stat_activity`); "
        "code holding a connection across a slow call.",
        "Kill runaway queries; raise the pool size if the database has room; fix the code path that keeps "
        "connections checked out.",
    ),
    "DatabaseConnectionPoolWaiting": Runbook(
        "Requests wait for a connection of a database pool: the pool is too small for the load, or connections "
        "are held too long.",
        "The same gauges as for DatabaseConnectionPoolExhausted, and the latency of the routes that query.",
        "As for DatabaseConnectionPoolExhausted.",
    ),
    "SlowDatabaseQueries": Runbook(
        "The 95th percentile of one query kind (`operation` on `table`) is above the threshold (1 s by default) "
        "over 5 minutes.",
        "The slow queries in the database's log or `pg_stat_statements`; missing indexes, lock waits, a table "
        "that grew; the database host's CPU and I/O.",
        "Add the index, rewrite the query or cache its result; cancel blocking transactions.",
    ),
    "HighDatabaseErrorRate": Runbook(
        "More than the threshold (5 % by default) of one kind of database query fails.",
        "`<ns>_db_errors_total` by `operation` and `error_type`; the database's log; PostgreSQLDown.",
        "Connection errors: see PostgreSQLDown; constraint or syntax errors after a deploy: roll back; "
        "serialization failures: retry them in the code.",
    ),
    "HighMemoryUsage": Runbook(
        "The process's resident memory is above the threshold (2 GiB by default).",
        "`process_resident_memory_bytes` over the last days (a slow climb is a leak, a step a new cache or a "
        "large response); ProcessMemoryGrowing; the routes served when it grew.",
        "Restart the instance to buy time (one at a time); cap caches; profile the process (tracemalloc, memray).",
    ),
    "KeycloakDown": Runbook(
        "The health check of Keycloak (the check named `keycloak`, or the one set in "
        "`alerts.rules.KeycloakDown.check`) fails: logins and token checks fail.",
        _DOWN_CHECK,
        "Restart or fail over Keycloak; meanwhile, tokens already issued keep working until they expire.",
    ),
    "RedisDown": Runbook(
        "The health check of Redis (the checks whose plugin is `redis`, or `alerts.rules.RedisDown.check`) "
        "fails: caching, sessions and rate limiting that need it fail or fall back.",
        _DOWN_CHECK + " `redis-cli -u <url> ping`.",
        "Restart or fail over Redis; check its memory (`maxmemory`) and persistence errors.",
    ),
    "PostgreSQLDown": Runbook(
        "The health check of PostgreSQL (the checks whose plugin is `postgres`, or the one set in "
        "`alerts.rules.PostgreSQLDown.check`) fails: every request that queries fails, "
        "and a critical check takes the instances out of the load balancer.",
        _DOWN_CHECK + " `psql <dsn> -c 'select 1'`; the server's disk space and connection limit.",
        "Restart or fail over the database; free disk space; raise `max_connections` or add a connection pooler.",
    ),
    "LiteLLMProxyDown": Runbook(
        "The health check of the LiteLLM proxy (the check named `litellm`, or `alerts.rules.LiteLLMProxyDown.check`) "
        "fails: LLM features fail.",
        _DOWN_CHECK,
        "Restart the proxy; check its upstream provider keys and quotas; switch the features to a fallback model.",
    ),
    "HighLLMErrorRate": Runbook(
        "More than the threshold (5 % by default) of the requests to one model fail.",
        '`<ns>_llm_requests_total{status="error"}` by `model` and `provider`; the provider\'s status page; '
        "quota and rate-limit errors in the logs; LiteLLMProxyDown.",
        "Fail over to another model or provider; raise the quota; back off when rate limited.",
    ),
    "SlowLLMRequests": Runbook(
        "The 95th percentile of one model's request duration is above the threshold (30 s by default).",
        "`<ns>_llm_request_duration_seconds` by `model`; prompt sizes (`<ns>_llm_tokens_total`); the provider's "
        "status page.",
        "Stream the answers; use a faster model for the slow feature; shorten the prompts.",
    ),
    # -- business -------------------------------------------------------------------------------
    "LowUserRegistrations": Runbook(
        "Fewer users signed up in 24 hours than the threshold (5 by default); a service that recorded none "
        "counts as 0.",
        "The sign-up page and its errors (`<ns>_http_requests_total` of its route); confirmation e-mails; "
        "`<ns>_user_registrations_total` by `source` (a marketing channel that stopped).",
        "Fix the broken step of the sign-up; otherwise tell the product team.",
    ),
    "LowActiveUsers": Runbook(
        "Fewer successful logins in an hour than the threshold (10 by default).",
        "Login failures (HighLoginFailureRatio, KeycloakDown); the login route's errors; the time of day (a "
        "threshold fit for peak hours fires at night: set `for` or the threshold in `alerts.rules`).",
        "Fix the login path if it is broken; tune the threshold otherwise.",
    ),
    "HighFeatureAccessDenials": Runbook(
        "More feature accesses were denied in an hour than the threshold (100 by default): users hit a plan "
        "limit, or an entitlement is broken.",
        '`<ns>_feature_access_total{result="denied"}` by `feature` and `tier`; a recent change of plans or '
        "entitlements.",
        "Fix a broken entitlement; tell the product team when users want a feature their plan lacks.",
    ),
    "WebhookDeliveryFailures": Runbook(
        "More webhook deliveries failed in an hour than the threshold (10 by default).",
        '`<ns>_webhook_deliveries_total{status="failed"}` by `event`; the receiving endpoints\' answers in the '
        "logs (one customer's endpoint down, or all of them: then our sender).",
        "Retry the failed deliveries; tell the customer whose endpoint refuses them; fix the sender.",
    ),
    # -- runtime --------------------------------------------------------------------------------
    "HighProcessCPU": Runbook(
        "The process uses more than the threshold (90 % by default) of a CPU core: a Python process seldom "
        "uses much more than one, so it is saturated and requests queue.",
        "Latency and requests in progress of the instance; a hot code path (py-spy top); CPU-heavy work in the "
        "event loop (JSON of large bodies, hashing, compression).",
        "Scale out or run more workers (`--workers`); move CPU-heavy work off the request path.",
    ),
    "FileDescriptorsNearLimit": Runbook(
        "The process has more than the threshold (80 % by default) of its file descriptor limit open: leaking "
        "sockets or files.",
        "`process_open_fds` over time (a steady climb is a leak); `ls -l /proc/<pid>/fd` or `lsof -p <pid>`; "
        "HTTP clients created per request instead of shared.",
        "Restart the instance to buy time; fix the leak; raise the limit (`ulimit -n`) if the load needs it.",
    ),
    "FileDescriptorsExhausted": Runbook(
        "The process has more than the threshold (95 % by default) of its file descriptor limit open: new "
        "connections and files fail with 'too many open files'. It silences FileDescriptorsNearLimit.",
        "As for FileDescriptorsNearLimit.",
        "Restart the instance now (one at a time), then fix the leak.",
    ),
    "FrequentRestarts": Runbook(
        "The processes of an instance restarted more often in an hour than the threshold (3 by default): a crash "
        "loop, or workers killed for memory.",
        "The process's last log lines before each start; the kernel's or orchestrator's OOM kills; a failing "
        "startup (bad settings exit with status 2 and one line on stderr).",
        "Roll back the deploy or settings change that started it; give the process more memory if it is killed "
        "for memory.",
    ),
    "ProcessMemoryGrowing": Runbook(
        "At the last hour's pace the process's memory will be more than the threshold (2x by default) its size "
        "now within 4 hours: a leak.",
        "`process_resident_memory_bytes` over the last day; the routes and features used when it grows; "
        "unbounded caches or label values (MetricLabelOverflow).",
        "Restart before it runs out of memory; find the leak with tracemalloc or memray.",
    ),
    # -- suite ----------------------------------------------------------------------------------
    "TargetDown": Runbook(
        "Prometheus cannot scrape an instance of the service: the instance is down, unreachable, or its "
        "`/metrics` refuses Prometheus.",
        "The target's error on Prometheus' Targets page; the instance's health (`GET /health`); `metrics.allow` "
        "and `metrics.bearer_token` against the scrape configuration; a separate `metrics.port`.",
        "Restart the instance; fix the network policy, the allowed networks or the token.",
    ),
    "ServiceMetricsAbsent": Runbook(
        "No target of the service exposes `<ns>_build_info`: the service is down everywhere, or Prometheus does "
        "not scrape it at all; every other alert of the service is blind.",
        "Prometheus' Targets page and its service discovery; whether the service runs; whether `namespace` (the "
        "metric prefix) or `alerts.job` changed.",
        "Bring the service or its scrape configuration back; regenerate the rules after a namespace change.",
    ),
    "TracingSpansDropped": Runbook(
        "The service drops spans before exporting them (label `reason`): `queue_full` means the collector is "
        "slower than the traffic, `export_failed` that it refuses or is down, `shutdown` that the process exited "
        "with spans queued.",
        "The collector's health (Zipkin, OTLP endpoint) and its logs; the service's `tracing` warnings.",
        "Fix or scale the collector; lower `tracing.sample_ratio` if the volume is too high.",
    ),
    "MetricLabelOverflow": Runbook(
        "New values of a label of a metric (labels `metric` and `label`) were folded into the overflow value: "
        "the label carries unbounded values (ids, raw paths, free text).",
        "Which metric and label; the code that records it: a value that should be bounded (a route template, "
        "a tier) but is not.",
        "Fix the label (bounded values only); raise `metrics.label_caps` for that metric when more values are "
        "legitimate.",
    ),
    "HealthCheckFailing": Runbook(
        "A health check (label `check`) has failed for 5 minutes; when the check is critical, the instance "
        "answers 503 on readiness and is out of the load balancer.",
        _DOWN_CHECK,
        "Fix the dependency; if a non-essential dependency fails, make its check non-critical "
        "(`critical = false`) so that it does not take the service out.",
    ),
    "HealthCheckDegraded": Runbook(
        "A health check (label `check`) answers with a warning (status 0.5): the dependency works but is close "
        "to a limit (disk, memory, a slow answer).",
        "`<health path>/detailed` for the check's details.",
        "Act on the limit it names before it fails (free disk, add memory).",
    ),
    "HealthCheckSlow": Runbook(
        "A health check takes longer than the threshold (half of `health.timeout` by default): the dependency "
        "is slow, and readiness probes are about to time out.",
        "`<ns>_health_check_duration_seconds` by `check`; the dependency's latency and load.",
        "Fix the slow dependency; raise `health.timeout` only if the dependency is slow by nature.",
    ),
    "HealthChecksNotReporting": Runbook(
        "The service is scraped but reports no health check result: nothing calls its readiness endpoint, so "
        "the checks never run and the 'down' alerts cannot fire.",
        "The orchestrator's readiness probe (path `<health path>/ready`); the `health.checks` settings.",
        "Configure a readiness probe on `<health path>/ready` (or have Prometheus probe it).",
    ),
    "MultiprocessDirectoryGrowing": Runbook(
        "The multiprocess metrics directory (`metrics.multiprocess_dir`) keeps gaining files: files of dead "
        "workers are not swept, and every scrape reads them all.",
        "The directory's files and their pids; workers restarting in a loop (FrequentRestarts).",
        "Stop the worker crash loop; restart the service with a fresh directory (the first worker wipes it).",
    ),
    "SlowMetricsScrape": Runbook(
        "Scraping the instance takes longer than the threshold (1 s by default): too many series, or a large "
        "multiprocess directory.",
        "`scrape_samples_scraped` of the target; MetricLabelOverflow; MultiprocessDirectoryGrowing.",
        'Cut the cardinality (label caps, drop id labels with `metrics.id_labels = "drop"`); sweep the '
        "multiprocess directory.",
    ),
    # -- slo ------------------------------------------------------------------------------------
    "AvailabilityBurnRate1h": Runbook(
        "Over the last hour (and still over the last 5 minutes) the service failed requests 14.4 times faster "
        "than the availability objective allows: 2 % of the 30-day budget gone in an hour. Page.",
        _BURN_CHECK,
        _ERRORS_MITIGATE,
    ),
    "AvailabilityBurnRate6h": Runbook(
        "Over the last 6 hours (and still over the last 30 minutes) the availability error budget burns 6 times "
        "too fast: 5 % of the 30-day budget in 6 hours. Page.",
        _BURN_CHECK,
        _ERRORS_MITIGATE,
    ),
    "AvailabilityBurnRate1d": Runbook(
        "Over the last day (and still over the last 2 hours) the availability error budget burns 3 times too "
        "fast: at that pace it is gone in 10 days. A ticket, not a page.",
        _BURN_CHECK,
        "Find and fix the steady source of errors this week; hold back risky changes meanwhile.",
    ),
    "AvailabilityBurnRate3d": Runbook(
        "Over the last 3 days (and still over the last 6 hours) the service failed requests as fast as the "
        "whole budget allows: the objective will be missed at the end of the 30 days. A ticket.",
        _BURN_CHECK,
        "Plan reliability work for the routes that fail most.",
    ),
    "LatencyBurnRate1h": Runbook(
        "Over the last hour (and still over the last 5 minutes) the requests slower than "
        "`alerts.slo.latency_threshold` spend the latency error budget 14.4 times too fast. Page.",
        _BURN_CHECK + " " + _LATENCY_CHECK,
        _LATENCY_MITIGATE,
    ),
    "LatencyBurnRate6h": Runbook(
        "Over the last 6 hours (and still over the last 30 minutes) slow requests spend the latency error "
        "budget 6 times too fast. Page.",
        _BURN_CHECK + " " + _LATENCY_CHECK,
        _LATENCY_MITIGATE,
    ),
    "LatencyBurnRate1d": Runbook(
        "Over the last day (and still over the last 2 hours) slow requests spend the latency error budget 3 "
        "times too fast. A ticket.",
        _BURN_CHECK,
        "Find the routes and dependencies that got slower and fix them this week.",
    ),
    "LatencyBurnRate3d": Runbook(
        "Over the last 3 days (and still over the last 6 hours) slow requests spend the latency budget as fast "
        "as the whole budget allows. A ticket.",
        _BURN_CHECK,
        "Plan performance work for the slowest routes.",
    ),
    "ErrorBudgetLow": Runbook(
        "Less than the threshold (25 % by default) of the 30-day error budget of an objective (label `slo`) is left.",
        "Which burn-rate alerts fired this month, and the incidents behind them.",
        "Spend what is left on nothing risky: slow down deploys of risky changes, prefer reliability work.",
    ),
    "ErrorBudgetExhausted": Runbook(
        "The 30-day error budget of an objective (label `slo`) is spent: the objective is missed. It silences "
        "ErrorBudgetLow in the Alertmanager example.",
        "As for ErrorBudgetLow.",
        "Freeze risky changes until the budget recovers; put reliability work first, as the SLO policy says.",
    ),
}
"""Runbook entries by alert name."""
