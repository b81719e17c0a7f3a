"""The ``billing`` pack: credits, payments, subscriptions and LLM cost (the summary's "Billing & Credits")."""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, ratio, regex
from ops_observe.alerts.rules import RuleGroup

CANCELLATIONS = "cancellation|cancel|canceled|cancelled"
"""The ``change_type`` values the catalog treats as a cancellation (``record_subscription_change``)."""

NO_IDS = "metrics.id_labels is 'drop': the balance has no user or organisation label to alert on"


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The billing alerts, on the credit, payment, subscription and LLM cost metrics."""
    a = ctx.pack("billing")
    balance = ctx.metric("credit_balance")
    payments = ctx.metric("payment_transactions_total")
    failed = ctx.metric("payment_transactions_total", status="failed")
    cancellations = ctx.metric("subscription_changes_total", change_type=regex(CANCELLATIONS))
    cost = ctx.metric("llm_cost_total")
    no_ids = "" if ctx.id_labels else NO_IDS
    return [
        a.group(
            a.alert(
                "LowCreditBalance", f"{balance} < $threshold", threshold=100, for_="5m", severity="warning",
                disabled=no_ids,
                summary="A credit balance is below $threshold.",
                description="User {{ $labels.user_id }} of organisation {{ $labels.organization_id }} "
                "({{ $labels.tier }}) has {{ $value | humanize }} credits left (threshold $threshold).",
            ),
            a.alert(
                "CriticalCreditBalance", f"{balance} < $threshold", threshold=10, for_="1m", severity="critical",
                disabled=no_ids,
                summary="A credit balance is almost exhausted (below $threshold).",
                description="User {{ $labels.user_id }} of organisation {{ $labels.organization_id }} "
                "({{ $labels.tier }}) has {{ $value | humanize }} credits left (threshold $threshold); "
                "their requests are about to be refused.",
            ),
            a.alert(
                "HighCreditUsage",
                f"{ctx.sum_increase(ctx.metric('credit_usage_total'), '1h', 'organization_id')} > $threshold",
                threshold=1000, for_="30m", severity="warning",
                summary="An organisation uses more than $threshold credits an hour.",
                description="Organisation {{ $labels.organization_id }} used {{ $value | humanize }} credits "
                "in the last hour (threshold $threshold).",
            ),
            a.alert(
                "PaymentFailed", f"{ctx.sum_increase(failed, '5m')} > $threshold", threshold=3, for_="0m",
                severity="warning",
                summary="More than $threshold payments failed in 5 minutes.",
                description="{{ $value | humanize }} payments failed on {{ $labels.job }} in the last "
                "5 minutes (threshold $threshold).",
            ),
            a.alert(
                "HighPaymentFailureRatio",
                f"{ratio(ctx.sum_rate(failed, '15m'), ctx.sum_rate(payments, '15m'))} > $threshold",
                threshold=0.1, shown="percent", for_="15m", severity="warning",
                summary="More than $threshold of the payments fail.",
                description="{{ $value | humanizePercentage }} of the payments on {{ $labels.job }} failed "
                "over the last 15 minutes (threshold $threshold): few payments, but most of them lost.",
            ),
            a.alert(
                "SubscriptionChurn", f"{ctx.sum_increase(cancellations, '24h')} > $threshold", threshold=10,
                for_="0m", severity="warning",
                summary="More than $threshold subscriptions were cancelled in 24 hours.",
                description="{{ $value | humanize }} subscriptions of {{ $labels.job }} were cancelled in "
                "the last 24 hours (threshold $threshold).",
            ),
            a.alert(
                "LLMCostSpike", f"{ratio(ctx.sum_rate(cost, '15m'), ctx.sum_rate(cost, '1d'))} > $threshold",
                threshold=3, shown="factor", for_="15m", severity="warning",
                summary="LLM spending runs at more than $threshold its 24-hour average.",
                description="The LLM cost of {{ $labels.job }} over the last 15 minutes runs at "
                "{{ $value | humanize }}x its 24-hour average (threshold $threshold).",
            ),
        )
    ]  # fmt: skip
