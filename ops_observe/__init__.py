"""ops_observe: correlation IDs, JSON logs, Prometheus metrics, traces and health checks for any ASGI app.

``app = ops_observe.wrap(app)`` and a settings file give the whole stack. The public names are
imported lazily, so ``import ops_observe`` stays cheap and pulls in no optional dependency.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ops_observe.errors import MiddlewareNotUsed, PluginError, SettingsError

__version__ = "0.1.0"

_LAZY = {
    "wrap": "ops_observe.app",
    "setup_observability": "ops_observe.app",
    "ObservedApp": "ops_observe.app",
    "Settings": "ops_observe.settings",
    "load_settings": "ops_observe.settings",
    "get_correlation_id": "ops_observe.correlation",
    "get_logger": "ops_observe.logging.api",
    "log_context": "ops_observe.logging.api",
    "log_call": "ops_observe.logging.api",
    "bind_request": "ops_observe.logging.api",
    "trace_request": "ops_observe.tracing.api",
    "trace_db_query": "ops_observe.tracing.api",
    "trace_external_call": "ops_observe.tracing.api",
    "add_span_attribute": "ops_observe.tracing.api",
    "add_span_event": "ops_observe.tracing.api",
    "get_trace_id": "ops_observe.tracing.api",
    "get_span_id": "ops_observe.tracing.api",
}

__all__ = ["MiddlewareNotUsed", "PluginError", "SettingsError", "__version__", "metrics", *_LAZY]

if TYPE_CHECKING:
    from ops_observe import metrics as metrics
    from ops_observe.app import ObservedApp as ObservedApp
    from ops_observe.app import setup_observability as setup_observability
    from ops_observe.app import wrap as wrap
    from ops_observe.correlation import get_correlation_id as get_correlation_id
    from ops_observe.settings import Settings as Settings
    from ops_observe.settings import load_settings as load_settings


def __getattr__(name: str) -> Any:
    if name == "metrics":
        return importlib.import_module("ops_observe.metrics")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ops_observe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
