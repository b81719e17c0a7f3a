"""`ops-observe alerts check`: lint the enabled rules against a live service's exposition.

A rule that reads a metric the service does not expose, or selects or groups by a label the
metric does not carry, never fires: it stays silent exactly when it is needed, and nothing
says so (the community rule sets carried dozens of these for years). This check reads the
service's ``/metrics`` page, walks every enabled rule's expression with the PromQL parser
(:mod:`ops_observe.alerts.promql`) and reports each selector that such drift broke.

* A histogram's ``_bucket``, ``_sum`` and ``_count`` series, and a counter's ``_total``, are
  looked up by the sample names the exposition shows.
* A recorded series (``<ns>:slo_errors:ratio_rate5m``) is satisfied by the recording rules of the
  same export that produce it; the labels an alert selects it by are followed into those rules'
  expressions, down to the metrics they read.
* Labels that Prometheus attaches at scrape time (``job``, ``instance``, and the keys of
  ``alerts.matchers``) are not expected in the exposition; nor are the series Prometheus writes
  itself (``up`` and the other scrape series, ``ALERTS``).
* A metric declared without any series yet (a labelled counter nothing incremented) exists, but
  its labels cannot be seen: it is counted as not verified, not as a problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from ops_observe.alerts.promql import PromQLError, Selector, selectors
from ops_observe.alerts.rules import Alert, Recording, RuleGroup
from ops_observe.settings import Settings, load_settings

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels every scraped series gets from Prometheus, whatever the exposition says."""

SCRAPE_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
"""Series Prometheus writes for every scrape of a target: they carry the target labels only."""

RULE_SERIES = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
"""Series Prometheus writes for its alerting rules: their labels are the alerts' own."""

# The sample names a family declared with no sample yet will show, by its type.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}
_MAX_DEPTH = 8  # recording rules reading recording rules; deeper than this is a cycle


class ExpositionError(RuntimeError):
    """The metrics URL could not be read or parsed; the message names the URL and the cause."""


class Exposition:
    """What one ``/metrics`` page offers: each sample name with the label names its series carry.

    ``None`` as the labels of a name: the family is declared (``# TYPE``) but has no series yet.
    """

    def __init__(self, series: Mapping[str, frozenset[str] | None]) -> None:
        self.series = dict(series)

    @classmethod
    def parse(cls, text: str, *, openmetrics: bool = False) -> Exposition:
        """Read a Prometheus text (0.0.4) or OpenMetrics page with prometheus-client's parser."""
        parser = openmetrics_families if openmetrics else text_string_to_metric_families
        series: dict[str, frozenset[str] | None] = {}
        for family in parser(text):
            for sample in family.samples:
                series[sample.name] = (series.get(sample.name) or frozenset()) | frozenset(sample.labels)
            if not family.samples:
                for suffix in _SUFFIXES.get(family.type, ("",)):
                    series.setdefault(family.name + suffix, None)
        return cls(series)

    def __contains__(self, name: object) -> bool:
        return name in self.series

    def labels(self, name: str) -> frozenset[str] | None:
        """The label names of ``name``'s series (``None``: declared, no series yet); KeyError when absent."""
        return self.series[name]

    def closest(self, name: str) -> str:
        """The exposed name that looks most like ``name`` ("" when none does), for a "did you mean"."""
        return next(iter(difflib.get_close_matches(name, self.series, n=1, cutoff=0.75)), "")


@dataclass(frozen=True)
class Problem:
    """One selector of one rule that the exposition does not satisfy.

    ``missing`` is empty when the metric itself is absent; ``via`` names the recording rule whose
    expression was followed to reach ``metric``; ``detail`` says the rest (what the metric has,
    close names).
    """

    rule: str
    metric: str
    missing: tuple[str, ...] = ()
    reason: str = ""
    via: str = ""
    detail: str = ""

    def __str__(self) -> str:
        if self.missing:
            what = f"missing label{'s' if len(self.missing) > 1 else ''} {', '.join(self.missing)}"
        else:
            what = self.reason or "no such metric in the exposition"
        line = f"{self.rule}: {self.metric}: {what}" if self.metric else f"{self.rule}: {what}"
        if self.detail:
            line += f" ({self.detail})"
        if self.via:
            line += f" [read through recording rule {self.via}]"
        return line


@dataclass(frozen=True)
class Report:
    """The outcome of a check: the problems, and how much was looked at."""

    problems: tuple[Problem, ...]
    rules: int
    selectors: int
    unverified: tuple[str, ...] = field(default=())
    """Metrics the rules read that are declared without any series: their labels were not seen."""

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def summary(self) -> str:
        """One line: rules, selectors, problems, and what could not be verified."""
        line = f"{_count(self.rules, 'rule')}, {_count(self.selectors, 'selector')} checked: "
        line += _count(len(self.problems), "problem")
        if self.unverified:
            line += f"; labels not verified (no series yet): {', '.join(self.unverified)}"
        return line


def check_rules(
    groups: Iterable[RuleGroup], exposition: Exposition, *, target_labels: Iterable[str] = TARGET_LABELS
) -> Report:
    """Every problem of the enabled rules of ``groups`` against ``exposition``."""
    rules = [rule for group in groups for rule in group.rules if not (isinstance(rule, Alert) and not rule.enabled)]
    checker = _Checker(rules, exposition, frozenset(target_labels))
    problems: list[Problem] = []
    for rule in rules:
        for problem in checker.rule(rule):
            if problem not in problems:
                problems.append(problem)
    return Report(tuple(problems), len(rules), checker.selectors, tuple(sorted(checker.unverified)))


def target_labels(settings: Settings) -> frozenset[str]:
    """The labels the scrape attaches under these settings: ``job``, ``instance``, ``alerts.matchers`` keys."""
    return TARGET_LABELS | frozenset(settings.alerts.matchers)


def fetch_exposition(url: str, *, bearer_token: str = "", timeout: float = 10.0) -> Exposition:
    """GET ``url`` and parse it; :class:`ExpositionError` when it cannot be read."""
    headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ExpositionError(f"cannot read {url}: {exc}") from None
    if response.status_code != 200:
        raise ExpositionError(f"cannot read {url}: HTTP {response.status_code}")
    openmetrics = response.headers.get("content-type", "").startswith("application/openmetrics-text")
    try:
        return Exposition.parse(response.text, openmetrics=openmetrics)
    except ValueError as exc:
        raise ExpositionError(f"{url} is not a Prometheus exposition: {exc}") from None


def check_metrics_url(url: str, settings: Settings | str | None = None, *, timeout: float = 10.0) -> Report:
    """Check the enabled rules of ``settings`` against the exposition at ``url``.

    The bearer token of ``metrics.bearer_token`` is sent when set. Raises
    :class:`~ops_observe.errors.SettingsError` for bad alert settings, :class:`ExpositionError`
    when the page cannot be read.
    """
    from ops_observe.alerts.export import rule_groups

    loaded = load_settings(settings)
    groups = rule_groups(loaded)  # validates the alert settings before any request
    exposition = fetch_exposition(url, bearer_token=loaded.metrics.bearer_token, timeout=timeout)
    return check_rules(groups, exposition, target_labels=target_labels(loaded))


def check_command(settings: Settings, url: str, *, out: IO[str], err: IO[str]) -> int:
    """`ops-observe alerts check`: print one line per problem and a summary; 0 clean, 1 problems, 2 unreadable."""
    try:
        report = check_metrics_url(url, settings)
    except ExpositionError as exc:
        print(f"ops-observe: {exc}", file=err)
        return 2
    for problem in report.problems:
        print(problem, file=out)
    print(report.summary(), file=out)
    return 0 if report.ok else 1


class _Checker:
    """Holds what one check run shares: the recording rules by name, and their own problems."""

    def __init__(self, rules: list[Alert | Recording], exposition: Exposition, targets: frozenset[str]) -> None:
        self.exposition = exposition
        self.targets = targets
        self.recordings: dict[str, list[Recording]] = {}
        for rule in rules:
            if isinstance(rule, Recording):
                self.recordings.setdefault(rule.record, []).append(rule)
        self.selectors = 0
        self.unverified: set[str] = set()
        self._own: dict[int, list[Problem]] = {}

    def rule(self, rule: Alert | Recording) -> list[Problem]:
        """The problems of one rule's expression."""
        if isinstance(rule, Recording):
            return self._recording_problems(rule)
        return self._expression(rule.name, rule.expr, frozenset(), via="", depth=0)

    def _recording_problems(self, recording: Recording) -> list[Problem]:
        key = id(recording)
        if key not in self._own:
            self._own[key] = []  # a cycle ends here instead of recursing for ever
            self._own[key] = self._expression(_rule_name(recording), recording.expr, frozenset(), via="", depth=0)
        return self._own[key]

    def _expression(self, rule: str, expr: str, need: frozenset[str], *, via: str, depth: int) -> list[Problem]:
        try:
            found = selectors(expr, grouping=need)
        except PromQLError as exc:
            return [Problem(rule, "", reason=str(exc), via=via)]
        problems: list[Problem] = []
        for selector in found:
            if not via:
                self.selectors += 1
            problems.extend(self._selector(rule, selector, via=via, depth=depth))
        return problems

    def _selector(self, rule: str, selector: Selector, *, via: str, depth: int) -> list[Problem]:
        metric = selector.metric
        if not metric:
            return [Problem(rule, str(selector), reason="the selector names no metric, so it cannot be checked")]
        problems = []
        lost = sorted(selector.lost - self.targets)
        if lost:
            reason = f"the rule relies on label{'s' if len(lost) > 1 else ''} {', '.join(lost)}, aggregated away before"
            problems.append(Problem(rule, metric, reason=reason, via=via))
        if metric in self.recordings:
            problems += self._recorded(rule, selector, via=via, depth=depth)
        elif selector.recorded:
            problems.append(Problem(rule, metric, reason="no recording rule of the export produces it", via=via))
        elif metric not in RULE_SERIES:
            problems += self._exposed(rule, selector, via=via)
        return problems

    def _exposed(self, rule: str, selector: Selector, *, via: str) -> list[Problem]:
        """The problem of a selector of an exposed metric: absent, or lacking a label the rule relies on."""
        metric = selector.metric
        if metric in SCRAPE_SERIES:
            have: frozenset[str] | None = frozenset()  # target labels only
        elif metric in self.exposition:
            have = self.exposition.labels(metric)
        else:
            close = self.exposition.closest(metric)
            return [Problem(rule, metric, via=via, detail=f"did you mean {close}?" if close else "")]
        if have is None:
            self.unverified.add(metric)
            return []
        missing = sorted(selector.required_labels() - have - self.targets)
        if not missing:
            return []
        detail = f"it has {', '.join(sorted(have))}" if have else "it has no labels"
        return [Problem(rule, metric, tuple(missing), via=via, detail=detail)]

    def _recorded(self, rule: str, selector: Selector, *, via: str, depth: int) -> list[Problem]:
        """Follow the labels ``selector`` needs into the recording rules that produce its series."""
        producers = [
            recording
            for recording in self.recordings[selector.metric]
            if all(m.matches(recording.labels[m.name]) for m in selector.matchers if m.name in recording.labels)
        ]
        if not producers:
            wanted = ", ".join(str(m) for m in selector.matchers if m.name != "__name__")
            reason = f"no recording rule of the export produces it with {wanted}"
            return [Problem(rule, selector.metric, reason=reason, via=via)]
        if depth >= _MAX_DEPTH:
            return [Problem(rule, selector.metric, reason="recording rules read each other in a cycle", via=via)]
        problems: list[Problem] = []
        for recording in producers:
            need = selector.required_labels() - set(recording.labels) - self.targets
            own = self._recording_problems(recording)
            found = self._expression(rule, recording.expr, need, via=_rule_name(recording), depth=depth + 1)
            problems.extend(_beyond(found, own))
        return problems


def _beyond(found: list[Problem], own: list[Problem]) -> list[Problem]:
    """What following a recorded series adds to the recording rule's own problems (reported apart)."""
    out = []
    for problem in found:
        same = [p for p in own if p.metric == problem.metric and p.reason == problem.reason]
        if not problem.missing and same:
            continue
        missing = tuple(label for label in problem.missing if not any(label in p.missing for p in same))
        if problem.missing and not missing:
            continue
        out.append(Problem(problem.rule, problem.metric, missing, problem.reason, problem.via, problem.detail))
    return out


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _rule_name(recording: Recording) -> str:
    labels = ", ".join(f'{name}="{value}"' for name, value in sorted(recording.labels.items()))
    return f"{recording.record}{{{labels}}}" if labels else recording.record
