"""The one way to find "the current app" for code that has none at hand.

``ops_observe.metrics.<name>``, the tracing decorators and helpers ask :func:`current_suite`: the
suite of the wrapped app serving the current request (set by :class:`ops_observe.app.ObservedApp`
for each request, so two wrapped apps serving at once stay apart), else the process default: the
most recently wrapped app still alive.

While one wrapped app is alive in the process (the usual case), it is the default, so serving a
request needs no context variable set: its suite's ``alone`` attribute (or :func:`sole`) tells
the app so, and it skips that per-request step. The moment a second app is wrapped, every
request sets :data:`serving` again.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ops_observe.suite import Suite

__all__ = ["current_suite", "found", "serving", "set_default", "sole"]

serving: ContextVar[Suite | None] = ContextVar("ops_observe_serving_suite", default=None)
"""The suite of the app serving the current request."""

# Every wrapped app's suite, oldest first, held weakly (a wrapped app is not kept alive by this).
_wrapped: list[weakref.ref[Suite]] = []


def current_suite() -> Suite | None:
    """The serving app's suite, else the most recently wrapped app's that is still alive, else ``None``."""
    suite = serving.get()
    if suite is not None:
        return suite
    for ref in reversed(_wrapped):
        suite = ref()
        if suite is not None:
            return suite
    return None


def set_default(suite: Suite) -> None:
    """Make ``suite`` the process default (each ``wrap()`` does; the app is not kept alive by it)."""
    _wrapped.append(weakref.ref(suite, _forget))
    _recount()


def found(suite: Suite) -> bool:
    """Whether :func:`current_suite` gives ``suite`` during its app's requests: a wrapped app's
    suite (:func:`set_default` made it a default), which the app sets as :data:`serving`
    whenever another wrapped app is alive. A suite built by hand is not."""
    return any(ref() is suite for ref in _wrapped)


def sole(suite: Suite) -> bool:
    """Whether ``suite`` is the only wrapped app's alive, hence the default without being set."""
    return suite.alone


def _forget(dead: weakref.ref[Suite]) -> None:
    # A weakref callback: the suite is gone (its reference already reads None).
    if dead in _wrapped:
        _wrapped.remove(dead)
    _recount()


def _recount() -> None:
    alive = [suite for suite in (ref() for ref in _wrapped) if suite is not None]
    for suite in alive:
        suite.alone = len(alive) == 1
