"""Installs the logging feature into a wrapped app's suite: the JSON stream, once per process.

loguru and the standard library's root logger are process-wide, so every wrapped app shares one
stream: installing again with equal settings changes nothing, with different settings the new
ones replace the old (the last wrapped app wins, as with ``logging.basicConfig(force=True)``).
:func:`uninstall` restores loguru and ``logging`` as they were.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from prometheus_client import Counter

from ops_observe.logging import setup
from ops_observe.logging.settings import LoggingSettings
from ops_observe.logging.stream import JsonStream
from ops_observe.metrics import SCRAPE_HOOKS
from ops_observe.suite import Suite

__all__ = ["DROPPED_METRIC", "install", "uninstall"]

SETTINGS = LoggingSettings
"""The ``[ops_observe.logging]`` section."""

DROPPED_METRIC = "{ns}_logging_lines_dropped"
"""Counter (``_total`` in the exposition) of log lines lost, by ``reason``: ``write_failed``, the
sink raised (a full disk, a closed pipe)."""


def install(suite: Suite) -> None:
    """Configure the JSON stream from ``suite.settings.logging``; flush it when the app shuts down.

    Nothing happens unless ``logging`` is in ``middleware`` or ``logging.enabled`` is true. With
    the access log on (``logging`` in ``middleware``), uvicorn's own access log is silenced unless
    ``logging.keep_server_access_log`` is true: it would log each request a second time. At the
    app's lifespan startup, console handlers the server or the framework added after ``wrap()``
    are taken off (see :func:`ops_observe.logging.setup.reroute`).
    """
    section = suite.settings.logging
    if not suite.feature_on("logging", section.enabled):
        return
    access_log_on = "logging" in suite.settings.middleware
    stream = setup.configure(suite.settings, silence_server_access=access_log_on and not section.keep_server_access_log)
    suite.state["logging.stream"] = stream
    _count_losses(suite, stream)
    if section.stdlib:
        suite.on_startup(setup.reroute)
    suite.on_shutdown(_flush)


def uninstall() -> None:
    """Remove the JSON stream and put loguru's and ``logging``'s previous handlers back."""
    setup.reset()


def _count_losses(suite: Suite, stream: JsonStream) -> None:
    """Count the lines ``stream`` fails to write in ``<ns>_logging_lines_dropped_total`` on the app's registry."""
    family = Counter(
        DROPPED_METRIC.format(ns=suite.settings.metric_namespace),
        "Log lines lost: write_failed (the sink raised: a full disk, a closed pipe).",
        ["reason"],
        registry=suite.registry,
    )
    child: list[Any] = []

    def resolve() -> Any:
        # The series is made on first use (the first scrape or the first loss), once every feature
        # is installed: it then takes prometheus-client's multiprocess files when the metrics
        # feature switched to them, which it does after this feature is installed.
        if not child:
            child.append(family.labels(reason="write_failed"))
        return child[0]

    def lost() -> None:
        resolve().inc()

    stream.on_write_error.append(lost)
    suite.state.setdefault(SCRAPE_HOOKS, []).append(resolve)


async def _flush() -> None:
    # With enqueue, lines may still wait in a queue: write them before the process ends.
    stream = setup.active
    if stream is not None:
        stream.complete()
    await logger.complete()
