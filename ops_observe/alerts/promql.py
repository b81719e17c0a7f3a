"""Which series a PromQL expression reads, and which of their labels it relies on.

`ops-observe alerts check` and the catalog consistency test ask of every rule: does each metric
it reads exist, with every label it matches on or groups by? Answering that from the rule's
text with regular expressions is how community rule sets drifted from the metrics they claim to
read; here the expression goes through a real PromQL parser (``promql-parser``, a binding of the
Rust parser that follows Prometheus' grammar) and the syntax tree is walked.

A label a selector relies on is either one of its own matchers (``status=~"5.."``; also
``endpoint!~"/health"``: on a metric without ``endpoint`` it would silently exclude nothing), or
a label that the expression around it matches or groups by: ``by (...)`` of an aggregation,
``on (...)`` and ``group_left/right (...)`` of a binary operation, ``le`` of
``histogram_quantile``, the source labels of ``label_replace`` and ``label_join``. The labels
named by ``without``/``ignoring`` are kept apart (``ignored``): an expression does not need them
to exist. A label needed further up that an aggregation on the way removes is ``lost``: the rule
itself is wrong, whatever the exposition. :func:`result_labels` says which labels an expression's
result carries (what an Alertmanager inhibition can match on).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import promql_parser
from promql_parser import (
    AggModifierType,
    AggregateExpr,
    BinaryExpr,
    Call,
    LabelModifierType,
    MatchOp,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatchCardinality,
    VectorSelector,
)

# The binding's enums compare equal but are not hashable: a list of pairs, not a dict.
_OPS = ((MatchOp.Equal, "="), (MatchOp.NotEqual, "!="), (MatchOp.Re, "=~"), (MatchOp.NotRe, "!~"))

# Functions whose output has none of their argument's labels: what is needed above them is not
# needed of what they read.
_LABEL_FREE = frozenset({"scalar", "absent", "absent_over_time", "vector", "time"})

# Aggregations that select series rather than combine them: their result keeps every label.
_SELECTING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})


class PromQLError(ValueError):
    """An expression the PromQL parser rejects; the message quotes the expression and the parser."""


@dataclass(frozen=True)
class LabelMatcher:
    """One label matcher of a selector: ``name op "value"``."""

    name: str
    op: str
    value: str

    def matches(self, value: str) -> bool:
        """Whether a series whose label has ``value`` passes this matcher ("" for an absent label)."""
        if self.op in ("=", "!="):
            return (value == self.value) == (self.op == "=")
        try:
            found = re.fullmatch(self.value, value) is not None
        except re.error:  # RE2 syntax Python lacks: assume it does not match
            found = False
        return found == (self.op == "=~")

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Selector:
    """One vector selector of an expression, with the labels the expression around it uses.

    ``metric`` is the metric name ("" when the selector names none, e.g. a regular expression on
    ``__name__``). ``grouping`` holds the labels the enclosing aggregations, binary operations
    and functions match or group by; ``ignored`` those named by ``without``/``ignoring``;
    ``lost`` the labels the expression needs further up but aggregates away before (``sum(x) /
    on (endpoint) y``: no result of ``sum(x)`` has an ``endpoint``), a mistake in the rule itself.
    """

    metric: str
    matchers: tuple[LabelMatcher, ...] = ()
    grouping: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()

    @property
    def recorded(self) -> bool:
        """A recording rule's output (``level:metric:operations``), not a metric of an exposition."""
        return ":" in self.metric

    def matched_labels(self) -> frozenset[str]:
        """Labels of the selector's matchers (a matcher on a label the metric never has is a mistake:
        it selects nothing, or, like ``x!="a"``, filters nothing)."""
        return frozenset(m.name for m in self.matchers if m.name != "__name__")

    def required_labels(self) -> frozenset[str]:
        """Every label the expression relies on the series having: matched or grouped by."""
        return self.matched_labels() | self.grouping

    def __str__(self) -> str:
        inside = ", ".join(str(m) for m in self.matchers if m.name != "__name__" or not self.metric)
        return f"{self.metric}{{{inside}}}" if inside else self.metric


def parse(expr: str) -> promql_parser.Expr:
    """The syntax tree of ``expr``; :class:`PromQLError` when the parser rejects it."""
    try:
        return promql_parser.parse(expr)
    except ValueError as exc:
        raise PromQLError(f"not valid PromQL: {exc}: {expr}") from None


def selectors(expr: str, *, grouping: Iterable[str] = ()) -> list[Selector]:
    """Every vector selector ``expr`` reads, in the order written.

    ``grouping`` names labels needed of the whole expression's result (the check passes the
    labels an alert selects a recorded series by, when it follows that series into the
    recording rule's expression).
    """
    found: list[Selector] = []
    _walk(parse(expr), _Need(frozenset(grouping)), found)
    return found


@dataclass(frozen=True)
class _Need:
    """What the expression above a node needs of it: labels to exist, labels it ignores, labels lost."""

    labels: frozenset[str]
    ignored: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()

    def add(self, labels: Iterable[str] = (), ignored: Iterable[str] = ()) -> _Need:
        return _Need(self.labels | frozenset(labels), self.ignored | frozenset(ignored), self.lost)

    def drop(self, labels: Iterable[str]) -> _Need:
        return _Need(self.labels - frozenset(labels), self.ignored, self.lost)

    def keep_only(self, labels: Iterable[str]) -> _Need:
        """An aggregation's input: its result has only ``labels``, whatever else was needed is lost."""
        kept = frozenset(labels)
        return _Need(kept, self.ignored, self.lost | (self.labels - kept))


def _walk(node: object, need: _Need, found: list[Selector]) -> None:
    if isinstance(node, VectorSelector):
        found.extend(_selectors(node, need))
    elif isinstance(node, MatrixSelector):
        found.extend(_selectors(node.vector_selector, need))
    elif isinstance(node, ParenExpr | UnaryExpr | SubqueryExpr):
        _walk(node.expr, need, found)
    elif isinstance(node, AggregateExpr):
        _walk(node.param, _Need(frozenset()), found)  # topk(scalar(x), ...) reads x
        _walk(node.expr, _aggregation_need(node, need), found)
    elif isinstance(node, BinaryExpr):
        left, right = _binary_needs(node, need)
        _walk(node.lhs, left, found)
        _walk(node.rhs, right, found)
    elif isinstance(node, Call):
        _walk_call(node, need, found)
    # number and string literals read nothing


def _aggregation_need(node: AggregateExpr, need: _Need) -> _Need:
    modifier = node.modifier
    labels = modifier.labels if modifier is not None else []
    by = modifier is None or modifier.type == AggModifierType.By
    if str(node.op) in _SELECTING:
        return need.add(labels) if by else need.add(ignored=labels)
    if str(node.op) == "count_values" and isinstance(node.param, StringLiteral):
        need = need.drop([node.param.val])  # the label count_values writes
    if by:
        return need.keep_only(labels)
    removed = frozenset(labels)
    return _Need(need.labels - removed, need.ignored | removed, need.lost | (need.labels & removed))


def _binary_needs(node: BinaryExpr, need: _Need) -> tuple[_Need, _Need]:
    modifier = node.modifier
    if modifier is None or modifier.matching is None:
        return need, need
    labels = modifier.matching.labels
    if modifier.matching.type == LabelModifierType.Include:
        left = right = need.add(labels)
    else:
        left = right = need.drop(labels).add(ignored=labels)
    # group_left(extra) copies ``extra`` from the "one" side (right), group_right from the left
    extra = modifier.group_labels or ()
    if modifier.card == VectorMatchCardinality.ManyToOne:
        right = right.add(extra)
    elif modifier.card == VectorMatchCardinality.OneToMany:
        left = left.add(extra)
    return left, right


def _walk_call(node: Call, need: _Need, found: list[Selector]) -> None:
    name = node.func.name
    strings = [arg.val for arg in node.args if isinstance(arg, StringLiteral)]
    if name in _LABEL_FREE:
        need = _Need(frozenset(), need.ignored, need.lost)
    elif name == "histogram_quantile":
        need = need.add(["le"])
    elif name == "label_replace" and len(strings) == 4:
        destination, _, source, _ = strings
        need = need.drop([destination]).add([source] if source else [])
    elif name == "label_join" and len(strings) >= 2:
        destination, _, *sources = strings
        need = need.drop([destination]).add(sources)
    for arg in node.args:
        _walk(arg, need, found)


def _selectors(node: VectorSelector, need: _Need) -> list[Selector]:
    # ``{a="1" or b="2"}`` selects the union of its alternatives: one Selector each
    alternatives = node.matchers.or_matchers or [node.matchers.matchers]
    out = []
    for matchers in alternatives:
        converted = tuple(LabelMatcher(m.name, _op(m.op), m.value) for m in matchers)
        metric = node.name or next((m.value for m in converted if m.name == "__name__" and m.op == "="), "")
        out.append(Selector(metric, converted, need.labels, need.ignored, need.lost))
    return out


def _op(op: MatchOp) -> str:
    return next(text for known, text in _OPS if op == known)


def result_labels(expr: str, labels_of: Callable[[str], frozenset[str]]) -> frozenset[str]:
    """The label names of the series ``expr`` returns (an alert's labels, before the rule adds its own).

    ``labels_of(metric)`` gives the label names of a selected metric's series (the scrape's
    target labels included). An Alertmanager inhibition rule needs this: a warning is silenced by
    its critical twin only when both carry the same values of the ``equal`` labels.
    """
    return _result(parse(expr), labels_of)


def _result(node: object, labels_of: Callable[[str], frozenset[str]]) -> frozenset[str]:
    if isinstance(node, VectorSelector):
        return frozenset().union(*(labels_of(s.metric) for s in _selectors(node, _Need(frozenset()))))
    if isinstance(node, MatrixSelector):
        return _result(node.vector_selector, labels_of)
    if isinstance(node, ParenExpr | UnaryExpr | SubqueryExpr):
        return _result(node.expr, labels_of)
    if isinstance(node, AggregateExpr):
        return _aggregation_result(node, _result(node.expr, labels_of))
    if isinstance(node, BinaryExpr):
        return _binary_result(node, labels_of)
    if isinstance(node, Call):
        return _call_result(node, labels_of)
    return frozenset()  # number and string literals


def _aggregation_result(node: AggregateExpr, inner: frozenset[str]) -> frozenset[str]:
    modifier = node.modifier
    labels = frozenset(modifier.labels if modifier is not None else ())
    by = modifier is None or modifier.type == AggModifierType.By
    if str(node.op) in _SELECTING:
        return inner
    written = frozenset([node.param.val]) if isinstance(node.param, StringLiteral) else frozenset()
    return (inner & labels if by else inner - labels) | written


def _binary_result(node: BinaryExpr, labels_of: Callable[[str], frozenset[str]]) -> frozenset[str]:
    left, right = _result(node.lhs, labels_of), _result(node.rhs, labels_of)
    if _is_scalar(node.lhs):
        return right
    if _is_scalar(node.rhs) or str(node.op) in ("and", "unless"):
        return left
    if str(node.op) == "or":
        return left | right
    modifier = node.modifier
    matching = modifier.matching if modifier is not None else None
    extra = frozenset(modifier.group_labels or ()) if modifier is not None else frozenset()
    if modifier is not None and modifier.card == VectorMatchCardinality.ManyToOne:
        return left | extra
    if modifier is not None and modifier.card == VectorMatchCardinality.OneToMany:
        return right | extra
    if matching is None:
        return left
    if matching.type == LabelModifierType.Include:
        return left & frozenset(matching.labels)
    return left - frozenset(matching.labels)


def _call_result(node: Call, labels_of: Callable[[str], frozenset[str]]) -> frozenset[str]:
    name = node.func.name
    strings = [arg.val for arg in node.args if isinstance(arg, StringLiteral)]
    if name in ("absent", "absent_over_time"):
        # absent() returns one series whose labels are the selector's equality matchers
        found: list[Selector] = []
        _walk(node.args[0], _Need(frozenset()), found)
        return frozenset(m.name for s in found for m in s.matchers if m.op == "=" and m.name != "__name__")
    vectors = [arg for arg in node.args if not _is_scalar(arg) and not isinstance(arg, StringLiteral)]
    if name in _LABEL_FREE or not vectors:
        return frozenset()
    inner = _result(vectors[0], labels_of)
    if name == "histogram_quantile":
        return inner - {"le"}
    if name in ("label_replace", "label_join") and strings:
        return inner | {strings[0]}
    return inner


def _is_scalar(node: object) -> bool:
    if isinstance(node, NumberLiteral):
        return True
    if isinstance(node, ParenExpr | UnaryExpr):
        return _is_scalar(node.expr)
    if isinstance(node, BinaryExpr):
        return _is_scalar(node.lhs) and _is_scalar(node.rhs)
    if isinstance(node, Call):
        return bool(node.func.return_type == ValueType.Scalar)
    return False
