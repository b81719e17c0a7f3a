"""Captured JSON lines for the logging tests (a module of its own: conftest.py names can be shadowed)."""

from __future__ import annotations

import json
import threading
from typing import Any

from ops_observe.logging import setup
from ops_observe.settings import load_settings


class Lines:
    """A sink that keeps every line written, and the installer of a JSON stream writing to it."""

    def __init__(self) -> None:
        self.raw: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.raw.append(line)

    def install(self, settings: dict[str, Any] | None = None) -> setup.JsonStream:
        """Install the JSON stream configured by ``settings`` (a dict), writing here."""
        return setup.configure(load_settings(settings or {}), sink=self)

    def parsed(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON; fails the test if one is not exactly one JSON object plus a newline."""
        out = []
        for line in self.raw:
            assert line.endswith("\n") and line.count("\n") == 1, f"not one line: {line!r}"
            value = json.loads(line)
            assert isinstance(value, dict), line
            out.append(value)
        return out

    def one(self, **match: Any) -> dict[str, Any]:
        """The single parsed line whose keys have the given values."""
        found = [d for d in self.parsed() if all(d.get(k) == v for k, v in match.items())]
        assert len(found) == 1, f"{len(found)} lines match {match}: {self.parsed()}"
        return found[0]
