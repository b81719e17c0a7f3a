"""The PromQL walk behind `alerts check`: which series an expression reads, and the labels it relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_observe.alerts.promql import LabelMatcher, PromQLError, Selector, selectors


def _needs(expr: str) -> list[tuple[str, list[str]]]:
    return [(s.metric, sorted(s.required_labels())) for s in selectors(expr)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", [("up", [])]),
        ('x{status=~"5.."}', [("x", ["status"])]),
        # even a matcher that a series without the label passes relies on the label
        ('x{status="", a!="", b!~".+"}', [("x", ["a", "b", "status"])]),
        ("sum by (endpoint) (rate(x_total[5m]))", [("x_total", ["endpoint"])]),
        ("sum without (instance) (x)", [("x", [])]),
        (
            "histogram_quantile(0.95, sum by (le, endpoint) (rate(h_bucket[5m])))",
            [("h_bucket", ["endpoint", "le"])],
        ),
        (
            'sum by (endpoint) (rate(r_total{status=~"5.."}[5m])) / on (endpoint) sum by (endpoint) (rate(r_total[5m]))',
            [("r_total", ["endpoint", "status"]), ("r_total", ["endpoint"])],
        ),
        ("a * on (pool) group_left (tier) b", [("a", ["pool"]), ("b", ["pool", "tier"])]),
        ("a * on (pool) group_right (tier) b", [("a", ["pool", "tier"]), ("b", ["pool"])]),
        ("a / ignoring (status) b", [("a", []), ("b", [])]),
        ('label_replace(a, "dst", "$1", "src", "(.*)") > on (dst) b', [("a", ["src"]), ("b", ["dst"])]),
        ('label_join(a, "dst", ",", "x", "y")', [("a", ["x", "y"])]),
        ('absent(x{check="db"})', [("x", ["check"])]),
        ("topk by (model) (3, y)", [("y", ["model"])]),
        ('count_values("v", x) > on (v) y', [("x", []), ("y", ["v"])]),
        ("max_over_time(sum by (pool) (x)[1h:1m])", [("x", ["pool"])]),
        ("topk(scalar(n), y)", [("n", []), ("y", [])]),
        ('{__name__="x", a="1"}', [("x", ["a"])]),
        (
            'ns:slo_errors:ratio_rate5m{slo="availability"} > 14.4 * (1 - 0.999)',
            [("ns:slo_errors:ratio_rate5m", ["slo"])],
        ),
        ("1 + 2", []),
    ],
)
def test_selectors_and_the_labels_they_need(expr: str, expected: list[tuple[str, list[str]]]) -> None:
    assert _needs(expr) == expected


def test_or_matchers_give_one_selector_each() -> None:
    assert _needs('x{a="1" or b="2"}') == [("x", ["a"]), ("x", ["b"])]


def test_a_label_needed_above_an_aggregation_that_drops_it_is_lost() -> None:
    left, right = selectors("sum(x) / on (endpoint) sum by (endpoint) (y)")
    assert left.lost == {"endpoint"} and left.required_labels() == set()
    assert right.lost == set() and right.required_labels() == {"endpoint"}
    (quantile,) = selectors("histogram_quantile(0.9, sum(rate(h_bucket[5m])))")
    assert quantile.lost == {"le"}
    (kept,) = selectors("sum without (instance) (x) > on (endpoint) y")[:1]
    assert kept.lost == set() and kept.ignored == {"instance"} and kept.required_labels() == {"endpoint"}


def test_grouping_passed_in_applies_to_the_whole_expression() -> None:
    (inner,) = selectors("sum by (endpoint) (rate(x[5m]))", grouping=["endpoint"])
    assert inner.required_labels() == {"endpoint"} and not inner.lost
    (flat,) = selectors("sum(rate(x[5m]))", grouping=["endpoint"])
    assert flat.lost == {"endpoint"}


def test_recorded_series_are_told_apart() -> None:
    recorded, plain = selectors("ns:x:rate5m + ns_x_total")
    assert recorded.recorded and not plain.recorded


def test_selector_reads_back_as_promql() -> None:
    (selector,) = selectors('x{job="api", status=~"5.."}')
    assert str(selector) == 'x{job="api", status=~"5.."}'
    assert str(Selector("up")) == "up"


def test_invalid_promql_names_the_expression() -> None:
    with pytest.raises(PromQLError, match=r"not valid PromQL: .*: sum by \(\(x\)"):
        selectors("sum by ((x)")


@pytest.mark.parametrize(
    ("matcher", "value", "matches"),
    [
        (LabelMatcher("a", "=", "x"), "x", True),
        (LabelMatcher("a", "=", "x"), "y", False),
        (LabelMatcher("a", "!=", "x"), "y", True),
        (LabelMatcher("a", "=~", "5.."), "503", True),
        (LabelMatcher("a", "=~", "5.."), "1503", False),  # anchored, as in Prometheus
        (LabelMatcher("a", "!~", "5.."), "200", True),
        (LabelMatcher("a", "=~", "(?P<bad"), "x", False),
    ],
)
def test_label_matcher(matcher: LabelMatcher, value: str, matches: bool) -> None:
    assert matcher.matches(value) is matches


_LABEL = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: name not in {"by", "on", "or", "and", "bool", "unless", "without", "ignoring", "offset"}
)


@given(
    grouped=st.lists(_LABEL, min_size=1, max_size=4, unique=True),
    matched=_LABEL,
    value=st.text(alphabet="abc5.*+|", min_size=1, max_size=6),
)
def test_grouped_and_matched_labels_are_required(grouped: list[str], matched: str, value: str) -> None:
    escaped = value.replace("\\", "\\\\")
    expr = f'sum by ({", ".join(grouped)}) (rate(metric_total{{{matched}="{escaped}"}}[5m]))'
    (selector,) = selectors(expr)
    assert selector.metric == "metric_total"
    assert selector.required_labels() == {*grouped, matched}
