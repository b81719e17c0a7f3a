"""The per-app runtime: what one wrapped app's units share (registry, endpoints, lifespan hooks).

Each call to :func:`ops_observe.wrap` makes its own :class:`Suite`, so two wrapped apps in one
process never share metric registries or health state.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any

from prometheus_client import CollectorRegistry

from ops_observe.root import Settings
from ops_observe.types import ASGIApp

Hook = Callable[[], Awaitable[None] | None]


class Suite:
    """Shared state of one wrapped app, handed to first-party units and to plugins that ask for it.

    Features register endpoints and lifespan hooks while the app is being built; after
    :meth:`freeze` the endpoint table is read-only.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.state: dict[str, Any] = {}
        self._endpoints: dict[str, ASGIApp] = {}
        self._endpoint_settings: dict[str, str] = {}
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._frozen = False
        # Kept by ops_observe.current: this suite is the only wrapped app's alive, hence the
        # process default, so serving a request needs no context variable set.
        self.alone = False

    @property
    def endpoints(self) -> MappingProxyType[str, ASGIApp]:
        """The suite's own endpoints by path, answered in front of the app."""
        return MappingProxyType(self._endpoints)

    def add_endpoint(self, path: str, endpoint: ASGIApp, *, setting: str = "") -> None:
        """Serve ``endpoint`` at ``path``; two features may not claim the same path.

        ``setting`` names the key that moves the endpoint (``"health.path"``), for the warning
        logged when the app serves that path itself and so keeps it.
        """
        if self._frozen:
            raise RuntimeError("endpoints cannot be added after the app is built")
        if path in self._endpoints:
            raise ValueError(f"two ops_observe endpoints claim the path {path!r}; change one in the settings")
        self._endpoints[path] = endpoint
        self._endpoint_settings[path] = setting

    def yield_endpoint(self, path: str) -> str:
        """Stop serving ``path`` (the app serves it itself); returns the setting that moves it."""
        if self._frozen:
            raise RuntimeError("endpoints cannot be removed after the app is built")
        del self._endpoints[path]
        return self._endpoint_settings.pop(path)

    def on_startup(self, hook: Hook) -> None:
        """Run ``hook`` (sync or async) when the server sends ``lifespan.startup``."""
        self._startup.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        """Run ``hook`` (sync or async) when the server sends ``lifespan.shutdown``, last added first."""
        self._shutdown.append(hook)

    def feature_on(self, name: str, enabled: bool | None) -> bool:
        """Whether feature ``name`` is to be installed: its section's ``enabled``, else whether
        its middleware is listed (a feature changes nothing the settings did not ask for)."""
        return enabled if enabled is not None else name in self.settings.middleware

    def freeze(self) -> None:
        self._frozen = True

    async def startup(self) -> None:
        for hook in self._startup:
            await _run(hook)

    async def shutdown(self) -> None:
        for hook in reversed(self._shutdown):
            await _run(hook)


async def _run(hook: Hook) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result
