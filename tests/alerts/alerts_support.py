"""Helpers of the alerts tests: settings of a service with every dependency, and the selectors of a rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import promql_parser

from ops_observe.settings import Settings, load_settings

CHECKS = {
    "db": {"plugin": "postgres", "dsn": "postgresql://postgres@127.0.0.1:5432/test"},
    "cache": {"plugin": "redis", "url": "redis://127.0.0.1:6379/0"},
    "keycloak": {"plugin": "http", "url": "http://127.0.0.1:8080/health"},
    "litellm": {"plugin": "http", "url": "http://127.0.0.1:4000/health"},
}
"""A service with every dependency the "down" alerts probe."""


def make_settings(alerts: dict[str, Any] | None = None, checks: dict[str, Any] | None = None, **root: Any) -> Settings:
    """The ops-center service (every check of :data:`CHECKS` unless ``checks``) with these alert settings."""
    data: dict[str, Any] = {
        "service_name": "ops-center",
        "health": {"checks": CHECKS if checks is None else checks},
        **root,
    }
    if alerts is not None:
        data["alerts"] = alerts
    return load_settings(data)


def selectors(expr: str) -> Iterator[promql_parser.VectorSelector]:
    """Every vector selector of ``expr``, through the PromQL parser."""
    for node, _ in nodes(expr):
        if isinstance(node, promql_parser.VectorSelector):
            yield node


def nodes(expr: str) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every node of ``expr``'s syntax tree with its ancestors, nearest last."""
    yield from _walk(promql_parser.parse(expr), ())


def _walk(node: Any, parents: tuple[Any, ...]) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    yield node, parents
    for attr in ("lhs", "rhs", "expr", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and type(child).__module__ == "promql_parser":
            yield from _walk(child, (*parents, node))
    for arg in getattr(node, "args", None) or ():
        yield from _walk(arg, (*parents, node))


def matchers(selector: promql_parser.VectorSelector) -> dict[str, tuple[str, str]]:
    """A selector's label matchers: ``{label: (op, value)}``."""
    ops = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
    return {m.name: (ops[str(m.op)], m.value) for m in selector.matchers.matchers}
