"""The ``business`` pack: sign-ups, logins, feature denials, webhooks (the summary's "Business KPIs").

"Fewer than N" rules count a service that recorded none as 0: a labelled counter appears only
at its first increment, and a rule on an absent series would stay silent exactly when nothing
happened.
"""

from __future__ import annotations

from ops_observe.alerts.context import AlertContext, not_equal
from ops_observe.alerts.rules import RuleGroup


def pack(ctx: AlertContext) -> list[RuleGroup]:
    """The business alerts, on the registration, login, feature access and webhook counters."""
    a = ctx.pack("business")
    registrations = ctx.metric("user_registrations_total")
    logins = ctx.metric("user_logins_total", status=not_equal("failed"))
    denials = ctx.metric("feature_access_total", result="denied")
    webhook_failures = ctx.metric("webhook_deliveries_total", status="failed")
    return [
        a.group(
            a.alert(
                "LowUserRegistrations", f"{ctx.sum_increase(registrations, '24h', or_zero=True)} < $threshold",
                threshold=5, for_="1h", severity="info",
                summary="Fewer than $threshold users signed up in 24 hours.",
                description="{{ $value | humanize }} users signed up on {{ $labels.job }} in the last "
                "24 hours (threshold $threshold): check the sign-up page and its e-mails.",
            ),
            a.alert(
                "LowActiveUsers", f"{ctx.sum_increase(logins, '1h', or_zero=True)} < $threshold", threshold=10,
                for_="30m", severity="info",
                summary="Fewer than $threshold logins in an hour.",
                description="{{ $value | humanize }} successful logins on {{ $labels.job }} in the last "
                "hour (threshold $threshold).",
            ),
            a.alert(
                "HighFeatureAccessDenials", f"{ctx.sum_increase(denials, '1h')} > $threshold", threshold=100,
                for_="30m", severity="warning",
                summary="More than $threshold feature accesses an hour are denied.",
                description="{{ $labels.job }} denied {{ $value | humanize }} feature accesses in the last "
                "hour (threshold $threshold): a plan limit users hit, or a broken entitlement.",
            ),
            a.alert(
                "WebhookDeliveryFailures", f"{ctx.sum_increase(webhook_failures, '1h')} > $threshold",
                threshold=10, for_="5m", severity="warning",
                summary="More than $threshold webhook deliveries failed in an hour.",
                description="{{ $value | humanize }} webhook deliveries of {{ $labels.job }} failed in the "
                "last hour (threshold $threshold).",
            ),
        )
    ]  # fmt: skip
