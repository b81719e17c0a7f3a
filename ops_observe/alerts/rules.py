"""The rule model: what an alert pack yields and what the export, the list and the checks read.

A pack (entry point in group ``ops_observe.alert_packs``) is a callable ``pack(context)`` that
returns :class:`RuleGroup` objects. Rules are plain frozen data: the PromQL expression is complete
(thresholds and label matchers already in it), so the exporter only has to serialise it and the
checks only have to parse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


@dataclass(frozen=True)
class Alert:
    """One alerting rule, with the values the settings chose.

    ``threshold`` is the number the expression compares with (``None`` for rules without one,
    e.g. a "down" rule); it is shown by ``ops-observe alerts list`` and in ``docs/alerts.md``.
    ``summary`` and ``description`` are Prometheus annotation templates (``{{ $labels.x }}``,
    ``{{ $value }}``). A disabled alert (``enabled=False``) is listed, with ``disabled_reason``
    saying why (settings, or a signal the service does not have), but left out of the export.
    """

    name: str
    pack: str
    expr: str
    severity: Severity
    summary: str
    description: str
    runbook_url: str
    for_: str = "0m"
    threshold: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    disabled_reason: str = ""

    def to_prometheus(self) -> dict[str, Any]:
        """The rule as it appears in a Prometheus rule file."""
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ and self.for_ not in ("0", "0s", "0m"):
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
        }
        return rule


@dataclass(frozen=True)
class Recording:
    """One recording rule (the SLO pack's ratios and error budget)."""

    record: str
    pack: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_prometheus(self) -> dict[str, Any]:
        """The rule as it appears in a Prometheus rule file."""
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


Rule = Alert | Recording


@dataclass(frozen=True)
class RuleGroup:
    """A Prometheus rule group: evaluated together, at one interval."""

    name: str
    rules: tuple[Rule, ...]
    interval: str | None = None

    def to_prometheus(self) -> dict[str, Any]:
        """The group as it appears in a Prometheus rule file (disabled alerts left out)."""
        group: dict[str, Any] = {"name": self.name}
        if self.interval:
            group["interval"] = self.interval
        group["rules"] = [r.to_prometheus() for r in self.rules if not (isinstance(r, Alert) and not r.enabled)]
        return group


class Pack(Protocol):
    """What an ``ops_observe.alert_packs`` entry point loads."""

    def __call__(self, context: Any) -> Iterable[RuleGroup]: ...
