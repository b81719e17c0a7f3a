"""What a pack is given (:class:`AlertContext`) and the builder its rules are made with.

A pack never formats a selector or a threshold itself: the context writes the label matchers the
settings ask for (``job``, ``matchers``) into every selector, and :class:`PackBuilder` puts the
threshold the settings chose into the expression, so a pack module is a list of constructor
calls. Shared PromQL shapes (a ratio whose denominator may be 0, a count that is 0 rather than
absent) live here too, written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ops_observe.alerts.rules import Alert, Recording, Rule, RuleGroup, Severity
from ops_observe.alerts.settings import AlertsSettings, SloSettings
from ops_observe.root import Settings

Matcher = str | tuple[str, str]
"""A label matcher's value: a string for ``=``, or ``(op, value)`` with op ``!=``, ``=~`` or ``!~``."""

Shown = Literal["number", "percent", "seconds", "bytes", "factor"]

THRESHOLD = "$threshold"
"""Written in a pack's expression (and annotations) where the threshold goes."""

GROUP_PREFIX = "ops_observe."


def regex(value: str) -> tuple[str, str]:
    """A ``=~`` matcher."""
    return ("=~", value)


def not_regex(value: str) -> tuple[str, str]:
    """A ``!~`` matcher."""
    return ("!~", value)


def not_equal(value: str) -> tuple[str, str]:
    """A ``!=`` matcher."""
    return ("!=", value)


def number(value: float) -> str:
    """A PromQL number literal: ``1000`` rather than ``1000.0``, ``0.01`` as written."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def show(value: float, shown: Shown) -> str:
    """The threshold as a person reads it in an annotation."""
    if shown == "percent":
        return f"{value * 100:g}%"
    if shown == "seconds":
        return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"
    if shown == "bytes":
        for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if value >= size:
                return f"{value / size:g}{unit}"
        return f"{value:g}B"
    if shown == "factor":
        return f"{value:g}x"
    return f"{value:g}"


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_escape(value: str) -> str:
    """``value`` matched literally inside an RE2 regular expression."""
    return "".join("\\" + c if c in r".^$*+?()[]{}|\-" else c for c in value)


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` only where the denominator is above 0 (no ``NaN``, no ``+Inf``)."""
    return f"(({numerator}) / ({denominator}) and ({denominator}) > 0)"


@dataclass(frozen=True)
class AlertContext:
    """Everything a pack reads: the namespace, the selectors, the settings, the service's signals.

    ``health_checks`` maps each configured health check's name to its plugin;
    ``latency_buckets`` are the bounds of the HTTP latency histogram; ``suite_paths`` the suite's
    own endpoints (probes and scrapes), which the HTTP traffic alerts leave out: a readiness
    probe answering 503 while Redis is down is not an API error.
    """

    settings: Settings
    ns: str
    alerts: AlertsSettings
    slo: SloSettings
    health_checks: Mapping[str, str]
    latency_buckets: tuple[float, ...]
    suite_paths: tuple[str, ...]
    tracing: bool
    id_labels: bool

    @property
    def by(self) -> str:
        """The labels alerts aggregate by: ``job`` and the configured matchers' labels."""
        return ", ".join(dict.fromkeys(("job", *self.alerts.matchers)))

    def selector(self, **extra: Matcher) -> str:
        """``{job="…", <matchers>, <extra>}``, or ``""`` when there is nothing to match."""
        pairs: list[tuple[str, Matcher]] = []
        if self.alerts.job:
            pairs.append(("job", self.alerts.job))
        pairs.extend(self.alerts.matchers.items())
        pairs.extend(extra.items())
        if not pairs:
            return ""
        parts = []
        for label, value in pairs:
            op, text = ("=", value) if isinstance(value, str) else value
            parts.append(f"{label}{op}{quote(text)}")
        return "{" + ", ".join(parts) + "}"

    def metric(self, name: str, **extra: Matcher) -> str:
        """The selector of catalog metric ``name`` (without the namespace): ``<ns>_<name>{…}``."""
        return f"{self.ns}_{name}{self.selector(**extra)}"

    def http(self, name: str = "http_requests_total", **extra: Matcher) -> str:
        """An HTTP metric's selector, without the suite's own endpoints (probes, scrapes)."""
        if self.suite_paths:
            extra = {"endpoint": not_regex("|".join(regex_escape(p) for p in self.suite_paths)), **extra}
        return self.metric(name, **extra)

    def ours(self, expr: str) -> str:
        """``expr`` on a metric without our namespace (``process_*``, ``up``) kept to this service's targets.

        With ``alerts.job`` set the selectors already say which targets are ours; without it,
        the targets that expose ``<ns>_build_info`` are.
        """
        if self.alerts.job:
            return expr
        return f"({expr}) and on (job, instance) {self.metric('build_info')}"

    def sum_rate(self, selector: str, window: str, by: str = "") -> str:
        """``sum by (<by>) (rate(<selector>[<window>]))``, grouped by :attr:`by` and ``by``."""
        return f"sum by ({self.group_by(by)}) (rate({selector}[{window}]))"

    def sum_increase(self, selector: str, window: str, by: str = "", or_zero: bool = False) -> str:
        """``sum by (…) (increase(…))``; with ``or_zero`` a service that never counted one is 0, not absent.

        Labelled counters appear at their first increment, so "fewer than N" rules would stay
        silent exactly when nothing happened; the 0 comes from ``<ns>_build_info``, which every
        target of this service exposes.
        """
        expr = f"sum by ({self.group_by(by)}) (increase({selector}[{window}]))"
        if or_zero:
            expr = f"({expr} or sum by ({self.group_by(by)}) ({self.metric('build_info')}) * 0)"
        return expr

    def quantile(self, q: float, histogram: str, window: str = "5m", by: str = "") -> str:
        """``histogram_quantile(q, …)`` of a histogram selector's ``_bucket`` series (pass it without the suffix)."""
        name, brace, rest = histogram.partition("{")
        buckets = f"{name}_bucket{brace}{rest}"
        return f"histogram_quantile({number(q)}, sum by ({self.group_by(by)}, le) (rate({buckets}[{window}])))"

    def checks(self, *, plugin: str = "", name: str = "") -> tuple[str, ...]:
        """The configured health checks using ``plugin``, or called ``name``."""
        return tuple(
            check
            for check, check_plugin in self.health_checks.items()
            if (plugin and check_plugin == plugin) or (name and check == name)
        )

    def runbook_url(self, alert: str) -> str:
        """``<runbook_base>#<alert name lowercased>``: the alert's section in ``docs/alerts.md``."""
        return f"{self.alerts.runbook_base}#{alert.lower()}"

    def pack(self, name: str) -> PackBuilder:
        """The builder of pack ``name``'s rules."""
        return PackBuilder(self, name)

    def group_by(self, extra: str = "") -> str:
        """:attr:`by` and the comma-separated labels of ``extra``, for a `by (...)` clause."""
        return ", ".join(dict.fromkeys([*self.by.split(", "), *(x.strip() for x in extra.split(",") if x.strip())]))


@dataclass(frozen=True)
class PackBuilder:
    """Makes one pack's rules: the threshold the settings chose goes into the expression.

    The other overrides (``for``, ``severity``, ``labels``, ``enabled``, ``alerts.disabled``)
    are applied by the exporter to every pack's alerts alike, third-party ones included.
    """

    context: AlertContext
    name: str

    def alert(
        self,
        name: str,
        expr: str,
        *,
        severity: Severity,
        summary: str,
        description: str,
        for_: str = "5m",
        threshold: float | None = None,
        shown: Shown = "number",
        disabled: str = "",
    ) -> Alert:
        """One alert; ``$threshold`` in ``expr`` becomes the number, in the annotations its display.

        ``disabled`` is why the alert cannot work for this service (a signal it does not
        have): the alert is then listed, with the reason, and not exported.
        """
        override = self.context.alerts.rules.get(name)
        if threshold is not None and override is not None and override.threshold is not None:
            threshold = override.threshold
        if threshold is not None:
            expr = expr.replace(THRESHOLD, number(threshold))
            summary = summary.replace(THRESHOLD, show(threshold, shown))
            description = description.replace(THRESHOLD, show(threshold, shown))
        return Alert(
            name=name,
            pack=self.name,
            expr=expr,
            severity=severity,
            summary=summary,
            description=description,
            runbook_url=self.context.runbook_url(name),
            for_=for_,
            threshold=threshold,
            enabled=not disabled,
            disabled_reason=disabled,
        )

    def record(self, record: str, expr: str, **labels: str) -> Recording:
        """One recording rule."""
        return Recording(record=record, pack=self.name, expr=expr, labels=labels)

    def group(self, *rules: Rule, suffix: str = "", interval: str | None = None) -> RuleGroup:
        """The rule group ``ops_observe.<pack>`` (``ops_observe.<pack>.<suffix>``)."""
        name = GROUP_PREFIX + self.name + (f".{suffix}" if suffix else "")
        return RuleGroup(name=name, rules=rules, interval=interval)
