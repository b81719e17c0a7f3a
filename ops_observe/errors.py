"""The exceptions users catch: one module so that every unit raises the same types."""

from __future__ import annotations


class SettingsError(ValueError):
    """Bad settings: the message names the source, the key path, the bad value and the expected form."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + problem)


class PluginError(RuntimeError):
    """A plugin could not be found, loaded or validated; the message names it and its distribution."""


class MiddlewareNotUsed(Exception):
    """Raised by a middleware factory to decline at build time; the reason is logged."""
