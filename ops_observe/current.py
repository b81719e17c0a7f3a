"""The one way to find "the current app" for code that has none at hand.

``ops_observe.metrics.<name>``, the tracing decorators and helpers ask :func:`current_suite`: the
suite of the wrapped app serving the current request (set by :class:`ops_observe.app.ObservedApp`
for each request, so two wrapped apps serving at once stay apart), else the process default: the
most recently wrapped app still alive.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ops_observe.suite import Suite

__all__ = ["current_suite", "serving", "set_default"]

serving: ContextVar[Suite | None] = ContextVar("ops_observe_serving_suite", default=None)
"""The suite of the app serving the current request."""

_default: list[weakref.ref[Suite]] = []


def current_suite() -> Suite | None:
    """The serving app's suite, else the most recently wrapped app's, else ``None``."""
    suite = serving.get()
    if suite is not None:
        return suite
    return _default[0]() if _default else None


def set_default(suite: Suite) -> None:
    """Make ``suite`` the process default (each ``wrap()`` does; the app is not kept alive by it)."""
    _default[:] = [weakref.ref(suite)]
