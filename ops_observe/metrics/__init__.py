"""The metrics feature of ops_observe.

Once an app is wrapped, ``ops_observe.metrics.<name>`` is the metric ``<name>`` (without the
namespace) of the most recently wrapped app's catalog, and the helpers are its methods::

    from ops_observe import metrics
    metrics.credit_transactions_total.labels(transaction_type="purchase", user_id=uid, organization_id=oid).inc()
    metrics.record_llm_usage(model=..., provider=..., user_id=..., organization_id=..., prompt_tokens=...,
                             completion_tokens=..., duration_seconds=..., cost_credits=..., status="success")

With several wrapped apps in one process, use each app's own catalog:
``wrapped.suite.state["metrics"]``. Importing this package creates no metric and imports nothing
heavy: the catalog is made per app by :func:`ops_observe.metrics.feature.install`.
"""

from __future__ import annotations

from typing import Any

_current: Any = None
"""The catalog of the most recently wrapped app (set by the feature's ``install``)."""


def current() -> Any:
    """The catalog of the most recently wrapped app; ``LookupError`` before any app is wrapped."""
    if _current is None:
        raise LookupError("no app has been wrapped yet: ops_observe.metrics has no catalog; call ops_observe.wrap(app)")
    return _current


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if _current is None:
        raise AttributeError(
            f"ops_observe.metrics.{name}: no app has been wrapped yet; the metrics exist once ops_observe.wrap(app) ran"
        )
    return getattr(_current, name)
