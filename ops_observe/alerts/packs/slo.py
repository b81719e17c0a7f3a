"""The ``slo`` pack: availability and latency objectives, as recording rules and burn-rate alerts.

The alerts are the Google SRE workbook's multi-window, multi-burn-rate ones: a page when the
error budget burns 14.4 times too fast over 1 hour (and still over 5 minutes), or 6 times over
6 hours (and 30 minutes); a ticket at 3 times over 1 day (and 2 hours) or once over 3 days (and
6 hours). The recorded series, with label ``slo`` (``availability`` or ``latency``) and
``endpoint`` when the SLO is per route, are what the dashboards read:

- ``<ns>:slo_errors:ratio_rate<window>``: the fraction of bad requests over the window;
- ``<ns>:slo_error_budget:remaining``: the fraction of the 30-day error budget left;
- ``<ns>:slo_objective:ratio``: the objective.
"""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, PackBuilder, number, regex, regex_escape
from ops_observe.alerts.rules import Alert, Recording, RuleGroup, Severity

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BUDGET_WINDOW = "30d"

# (long window, short window, burn rate, for, severity): the workbook's table.
BURN_RATES: tuple[tuple[str, str, float, str, Severity], ...] = (
    ("1h", "5m", 14.4, "2m", "critical"),
    ("6h", "30m", 6.0, "15m", "critical"),
    ("1d", "2h", 3.0, "1h", "warning"),
    ("3d", "6h", 1.0, "3h", "warning"),
)


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The SLO recording rules and alerts, for the whole service or each route of ``alerts.slo.routes``."""
    s = ctx.pack("slo")
    slo = ctx.slo
    rules: list[Recording | Alert] = []
    where = _where(ctx)
    for kind, objective in (("availability", slo.availability), ("latency", slo.latency_target)):
        rules += _recordings(s, ctx, kind, objective)
    for kind, objective in (("availability", slo.availability), ("latency", slo.latency_target)):
        rules += [_burn(s, ctx, kind, objective, *row) for row in BURN_RATES]
    budget = f"{ctx.ns}:slo_error_budget:remaining{ctx.selector()}"
    rules += [
        s.alert(
            "ErrorBudgetLow", f"{budget} < $threshold", threshold=0.25, shown="percent", for_="1h", severity="info",
            summary="Less than $threshold of the {{ $labels.slo }} error budget is left.",
            description="{{ $value | humanizePercentage }} of the 30-day {{ $labels.slo }} error budget of "
            f"{where} is left (threshold $threshold): spend it on nothing risky.",
        ),
        s.alert(
            "ErrorBudgetExhausted", f"{budget} <= $threshold", threshold=0, shown="percent", for_="1h",
            severity="warning",
            summary="The {{ $labels.slo }} error budget is spent.",
            description=f"The 30-day {{{{ $labels.slo }}}} error budget of {where} is spent "
            "({{ $value | humanizePercentage }} left): the objective is missed; reliability work first.",
        ),
    ]  # fmt: skip
    return [s.group(*rules)]


def _where(ctx: AlertContext) -> str:
    """The SLO's service in an annotation, with its route when the SLO is per route."""
    return "{{ $labels.job }} {{ $labels.endpoint }}" if ctx.slo.routes else "{{ $labels.job }}"


def _scope(ctx: AlertContext) -> tuple[dict[str, str | tuple[str, str]], str]:
    """The ``endpoint`` matcher and the extra grouping of a per-route SLO (none for the whole service)."""
    routes = ctx.slo.routes
    if not routes:
        return {}, ""
    return {"endpoint": regex("|".join(regex_escape(r) for r in routes))}, "endpoint"


def _le(bound: float) -> str:
    """The ``le`` matcher of a bucket: prometheus-client writes ``1.0``, Prometheus 3 stores ``1``."""
    text = number(bound)
    return f"{text}(\\.0)?" if "." not in text and "e" not in text else regex_escape(text)


def _ratio(ctx: AlertContext, kind: str, window: str) -> str:
    """The fraction of bad requests over ``window``; 0, not absent, while nothing failed."""
    scope, by = _scope(ctx)
    if kind == "availability":
        total = ctx.sum_rate(ctx.http("http_requests_total", **scope), window, by)
        errors = ctx.sum_rate(ctx.http("http_requests_total", status=regex("5.."), **scope), window, by)
        bad = f"({errors} or {total} * 0)"
    else:
        total = ctx.sum_rate(ctx.http("http_request_duration_seconds_count", **scope), window, by)
        fast = ctx.http("http_request_duration_seconds_bucket", le=regex(_le(ctx.slo.latency_threshold)), **scope)
        bad = f"({total} - {ctx.sum_rate(fast, window, by)})"
    return f"({bad} / {total} and {total} > 0)"


def _recordings(s: PackBuilder, ctx: AlertContext, kind: str, objective: float) -> list[Recording]:
    ns = ctx.ns
    rules = [s.record(f"{ns}:slo_errors:ratio_rate{w}", _ratio(ctx, kind, w), slo=kind) for w in WINDOWS]
    budget = f"1 - {_ratio(ctx, kind, BUDGET_WINDOW)} / (1 - {number(objective)})"
    rules.append(s.record(f"{ns}:slo_error_budget:remaining", budget, slo=kind))
    rules.append(s.record(f"{ns}:slo_objective:ratio", f"vector({number(objective)})", slo=kind))
    return rules


def _burn(
    s: PackBuilder, ctx: AlertContext, kind: str, objective: float, long: str, short: str, rate: float, for_: str,
    severity: Severity,
) -> Alert:  # fmt: skip
    """One burn-rate alert: both windows burn the budget ``rate`` times too fast."""
    budget = f"($threshold * (1 - {number(objective)}))"
    selector = ctx.selector(slo=kind)
    expr = (
        f"{ctx.ns}:slo_errors:ratio_rate{long}{selector} > {budget} "
        f"and {ctx.ns}:slo_errors:ratio_rate{short}{selector} > {budget}"
    )
    target = f"{objective * 100:g}% of the requests" + (
        "" if kind == "availability" else f" faster than {number(ctx.slo.latency_threshold)}s"
    )
    return s.alert(
        f"{kind.capitalize()}BurnRate{long}", expr, threshold=rate, shown="factor", for_=for_, severity=severity,
        summary=f"The {kind} error budget burns $threshold too fast (over {long} and {short}).",
        description=f"{_where(ctx)}: {{{{ $value | humanizePercentage }}}} of the "
        f"requests missed the {kind} objective ({target}) over the last {long}, burning the 30-day "
        f"budget at $threshold or more; at that pace it lasts {_lasts(rate)}.",
    )  # fmt: skip


def _lasts(rate: float) -> str:
    days = 30 / rate
    return f"{round(days * 24)} hours" if days < 3 else f"{round(days)} days"
