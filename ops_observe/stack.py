"""Building the middleware stack once, from the settings' list, first = outermost (Django order)."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from ops_observe import plugins
from ops_observe.errors import MiddlewareNotUsed, PluginError, SettingsError
from ops_observe.suite import Suite
from ops_observe.types import ASGIApp

logger = logging.getLogger("ops_observe")


def resolve_middleware(name: str, source: str, index: int) -> Any:
    """The factory behind an alias (entry point) or a dotted path such as ``myapp.mw:Audit``."""
    try:
        if "." in name or ":" in name:
            return plugins.import_from_string(name)
        return plugins.get(plugins.MIDDLEWARE, name).load()
    except PluginError as exc:
        raise SettingsError(source, f"middleware[{index}]", str(exc)) from exc.__cause__


def build_stack(app: ASGIApp, suite: Suite) -> ASGIApp:
    """Wrap ``app`` in the configured middlewares, innermost first, each called ``factory(app, settings)``.

    A factory that also takes a ``suite`` keyword gets the per-app :class:`Suite`, to share its
    metric registry and endpoints. A factory may decline with :class:`MiddlewareNotUsed`.
    """
    settings = suite.settings
    names = settings.middleware
    factories = [resolve_middleware(name, settings.source, i) for i, name in enumerate(names)]
    for name, factory in zip(reversed(names), reversed(factories), strict=True):
        try:
            if _accepts_suite(factory):
                app = factory(app, settings, suite=suite)
            else:
                app = factory(app, settings)
        except MiddlewareNotUsed as exc:
            logger.info("middleware %s not used: %s", name, exc)
    return app


def _accepts_suite(factory: Any) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return "suite" in parameters
