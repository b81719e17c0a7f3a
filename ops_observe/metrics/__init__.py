"""The metrics feature of ops_observe.

Once an app is wrapped, ``ops_observe.metrics.<name>`` is the metric ``<name>`` (without the
namespace) of the catalog of the app serving the current request, else of the most recently
wrapped app (:func:`ops_observe.current.current_suite`), and the helpers are its methods::

    from ops_observe import metrics
    metrics.credit_transactions_total.labels(transaction_type="purchase", user_id=uid, organization_id=oid).inc()
    metrics.record_llm_usage(model=..., provider=..., user_id=..., organization_id=..., prompt_tokens=...,
                             completion_tokens=..., duration_seconds=..., cost_credits=..., status="success")

Two wrapped apps serving at once in one process each count their own requests' calls; outside a
request, ``wrapped.suite.state["metrics"]`` names one app's catalog explicitly. Importing this
package creates no metric and imports nothing heavy: the catalog is made per app by
:func:`ops_observe.metrics.feature.install`.
"""

from __future__ import annotations

from typing import Any

from ops_observe.current import current_suite

STATE_KEY = "metrics"
"""``suite.state[STATE_KEY]`` holds a wrapped app's :class:`~ops_observe.metrics.catalog.Catalog`."""

SCRAPE_HOOKS = "metrics.scrape_hooks"
"""``suite.state[SCRAPE_HOOKS]``: a list other features append callables to (before or after the metrics
feature is installed); each runs before every scrape, in the thread that renders it, and must not raise."""


def current() -> Any:
    """The catalog of the app serving this request, else of the most recently wrapped app.

    ``LookupError`` before any app with metrics is wrapped.
    """
    suite = current_suite()
    catalog = suite.state.get(STATE_KEY) if suite is not None else None
    if catalog is None:
        raise LookupError(
            "no wrapped app has metrics: ops_observe.metrics has no catalog; call ops_observe.wrap(app) "
            "with 'metrics' in the middleware list (or metrics.enabled = true)"
        )
    return catalog


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        catalog = current()
    except LookupError as exc:
        raise AttributeError(f"ops_observe.metrics.{name}: {exc}") from None
    return getattr(catalog, name)
