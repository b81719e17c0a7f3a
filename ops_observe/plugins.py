"""Plugin discovery through entry points: find (metadata only), load, validate.

The core registers its own middlewares and checks through these same groups, so a third party's
plugin is found, loaded and reported exactly like a first-party one.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ops_observe.errors import PluginError

MIDDLEWARE = "ops_observe.middleware"
HEALTH_CHECKS = "ops_observe.health_checks"
ALERT_PACKS = "ops_observe.alert_packs"
FEATURES = "ops_observe.features"
GROUPS = (FEATURES, MIDDLEWARE, HEALTH_CHECKS, ALERT_PACKS)

# Message templates, imported by the tests.
DUPLICATE = "{group}: plugin {name!r} is registered twice, by {first} and by {second}"
NOT_INSTALLED = "{group}: no plugin named {name!r} is installed{hint}"
MODULE_MISSING = "{group}: plugin {name!r} from {dist}: module {module!r} is not installed ({value})"
IMPORT_RAISED = "{group}: plugin {name!r} from {dist}: importing {value} raised {error}"
NO_ATTRIBUTE = "{group}: plugin {name!r} from {dist}: {value} does not exist"
INVALID = "{group}: plugin {name!r} from {dist}: {problem}"


@dataclass(frozen=True)
class PluginSpec:
    """A discovered plugin: where it is declared, before anything is imported."""

    group: str
    name: str
    value: str
    distribution: str

    def load(self) -> Any:
        """Import the plugin and check that it has the shape its group needs."""
        obj = _import(self)
        problem = _VALIDATORS[self.group](obj)
        if problem:
            raise PluginError(INVALID.format(group=self.group, name=self.name, dist=self.distribution, problem=problem))
        return obj


@cache
def find(group: str) -> tuple[PluginSpec, ...]:
    """Every plugin declared in ``group``, sorted by name; a name declared by two distributions is refused."""
    found: dict[str, PluginSpec] = {}
    for ep in entry_points(group=group):
        spec = PluginSpec(group, ep.name, ep.value, _distribution(ep))
        other = found.get(ep.name)
        if other is not None and other != spec:
            first, second = sorted((other.distribution, spec.distribution))
            raise PluginError(DUPLICATE.format(group=group, name=ep.name, first=first, second=second))
        found[ep.name] = spec
    return tuple(sorted(found.values(), key=lambda s: s.name))


def get(group: str, name: str) -> PluginSpec:
    """The plugin called ``name`` in ``group``; else a :class:`PluginError` saying "did you mean"."""
    specs = find(group)
    for spec in specs:
        if spec.name == name:
            return spec
    raise PluginError(NOT_INSTALLED.format(group=group, name=name, hint=_hint(name, [s.name for s in specs])))


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; installed: {', '.join(names)}" if names else "; none is installed"


def import_from_string(path: str) -> Any:
    """Import ``package.module:attr`` or ``package.module.attr`` (Django and uvicorn style).

    A module that is not installed is told apart from a module that raised while importing; the
    second error is re-raised untouched, since it is the user's own bug to see.
    """
    module_name, sep, attrs = path.partition(":")
    if not sep:
        module_name, _, attrs = path.rpartition(".")
    if not module_name or not attrs:
        raise PluginError(f"{path!r} is not a dotted path such as 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_missing(module_name, exc):
            raise PluginError(f"cannot import {path!r}: module {exc.name!r} is not installed") from None
        raise
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise PluginError(f"cannot import {path!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _import(spec: PluginSpec) -> Any:
    fmt = {"group": spec.group, "name": spec.name, "dist": spec.distribution, "value": spec.value}
    module_name = spec.value.partition(":")[0].strip()
    try:
        return EntryPoint(spec.name, spec.value, spec.group).load()
    except ModuleNotFoundError as exc:
        if _is_missing(module_name, exc):
            raise PluginError(MODULE_MISSING.format(module=exc.name, **fmt)) from exc
        raise PluginError(IMPORT_RAISED.format(error=f"{type(exc).__name__}: {exc}", **fmt)) from exc
    except AttributeError as exc:
        raise PluginError(NO_ATTRIBUTE.format(**fmt)) from exc
    except Exception as exc:
        raise PluginError(IMPORT_RAISED.format(error=f"{type(exc).__name__}: {exc}", **fmt)) from exc


def _is_missing(module_name: str, exc: ModuleNotFoundError) -> bool:
    """True when ``module_name`` itself (or a parent package) is missing, not a module it imports."""
    return exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + "."))


def _distribution(ep: EntryPoint) -> str:
    dist = ep.dist
    if dist is None:
        return "an unknown distribution"
    return f"{dist.name} {dist.version}"


def _check_middleware(obj: Any) -> str | None:
    if not callable(obj):
        return f"{obj!r} is not callable; a middleware is called as Cls(app, settings)"
    return None


def _check_health_check(obj: Any) -> str | None:
    if not inspect.isclass(obj):
        return f"{obj!r} is not a class; a check is a class with a check() method"
    if not callable(getattr(obj, "check", None)):
        return f"{obj.__qualname__} has no check() method"
    return None


def _check_alert_pack(obj: Any) -> str | None:
    if not callable(obj):
        return f"{obj!r} is not callable; an alert pack is called with the settings and yields rule groups"
    return None


def _check_feature(obj: Any) -> str | None:
    if not callable(getattr(obj, "install", None)):
        return f"{obj!r} has no install(suite) function; a feature installs itself into a wrapped app's suite"
    return None


_VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    FEATURES: _check_feature,
    MIDDLEWARE: _check_middleware,
    HEALTH_CHECKS: _check_health_check,
    ALERT_PACKS: _check_alert_pack,
}
