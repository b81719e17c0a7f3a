"""Settings of the Prometheus alert-rule packs: which packs, the label matchers, per-rule overrides, the SLO.

What can be checked from the section alone is checked here, when the settings load; what needs
the packs themselves (an unknown rule name, a latency threshold that is not a histogram bucket)
is checked by :func:`ops_observe.alerts.export.validate`, before anything is exported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ops_observe.schema import metric_name, setting, unique

PACKS = ("api", "billing", "security", "infrastructure", "business", "runtime", "suite", "slo")
"""The first-party packs, all enabled by default."""

DEFAULT_RUNBOOK_BASE = "https://github.com/ops-observe/ops_observe/blob/main/docs/alerts.md"

_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")


def duration(value: str) -> None:
    """A Prometheus duration such as ``30s``, ``5m`` or ``1h30m``."""
    if not _DURATION.fullmatch(value):
        raise ValueError("must be a Prometheus duration such as '30s', '5m' or '1h30m'")


def _label_names(values: Mapping[str, str]) -> None:
    for name in values:
        metric_name(name)
        if name.startswith("__"):
            raise ValueError(f"{name!r}: label names starting with '__' are reserved")


def _objective(value: float) -> None:
    if not 0 < value < 1:
        raise ValueError("must be a fraction between 0 and 1, e.g. 0.999")


def _positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def _routes(values: tuple[str, ...]) -> None:
    unique(values)
    for route in values:
        if not route.startswith("/"):
            raise ValueError(f"{route!r} is not a route template such as '/items/{{id}}'")


@dataclass(frozen=True)
class RuleSettings:
    """``[ops_observe.alerts.rules.NAME]``: one alert's overrides; unset keys keep the pack's values."""

    threshold: float | None = setting(None, doc="The number the expression compares with.")
    for_: str | None = setting(
        None, key="for", doc="How long the condition must hold before the alert fires, e.g. `10m`.", check=duration
    )
    severity: Literal["critical", "warning", "info"] | None = setting(None, doc="The `severity` label.")
    labels: Mapping[str, str] = setting(doc="Extra labels on the alert, e.g. `{ team = \"payments\" }`.", factory=dict,
                                        check=_label_names)  # fmt: skip
    enabled: bool | None = setting(None, doc="`false` leaves the alert out of the export.")
    check: str | None = setting(
        None, doc='For the "down" alerts: the health check (a name in `health.checks`) whose status they read.'
    )


@dataclass(frozen=True)
class SloSettings:
    """``[ops_observe.alerts.slo]``: the objectives of the `slo` pack's recording rules and burn-rate alerts."""

    availability: float = setting(
        0.999, doc="Objective: the fraction of requests answered without a 5xx (499, client gone, is no error).",
        check=_objective,
    )  # fmt: skip
    latency_target: float = setting(
        0.99, doc="Objective: the fraction of requests faster than `latency_threshold`.", check=_objective
    )
    latency_threshold: float = setting(
        0.5, doc="Seconds; must be one of the latency histogram buckets (`metrics.buckets`).", check=_positive
    )
    routes: tuple[str, ...] = setting(
        (), doc="Route templates with an SLO each (label `endpoint`); empty: one SLO for the whole service.",
        check=_routes,
    )  # fmt: skip


@dataclass(frozen=True)
class AlertsSettings:
    """``[ops_observe.alerts]``: which alert packs `ops-observe alerts export` writes, and how."""

    packs: tuple[str, ...] = setting(PACKS, doc="Entry-point names in group `ops_observe.alert_packs`.", check=unique)
    job: str = setting("", doc='When set, every selector gets `job="<job>"`.')
    matchers: Mapping[str, str] = setting(
        doc='Extra label matchers added to every selector, e.g. `{ namespace = "prod" }`.',
        factory=dict,
        check=_label_names,
    )
    runbook_base: str = setting(
        DEFAULT_RUNBOOK_BASE, doc="Each alert's `runbook_url` is `<runbook_base>#<alert name, lowercased>`."
    )
    disabled: tuple[str, ...] = setting((), doc="Alert names left out of the export.", check=unique)
    rules: Mapping[str, RuleSettings] = setting(doc="Per-alert overrides, by alert name.", factory=dict)
    slo: SloSettings = setting(doc="Service level objectives of the `slo` pack.", factory=SloSettings)
