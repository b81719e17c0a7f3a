"""Installs the health feature into a wrapped app's suite.

``<ns>_health_check_status`` is set whenever a check runs. A probe of a health endpoint runs them,
and so does a scrape of ``/metrics`` (:class:`ScrapeRefresh`): Prometheus scrapes only
``/metrics``, and the "down" alerts read the gauge, so without it a dependency that stops while no
probe asks would keep its last "pass" for ever. A scrape reruns only the results older than
``health.cache_seconds``, shares a run already under way, and waits at most the checks' timeout.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

import anyio
import anyio.from_thread
import anyio.lowlevel
from prometheus_client import Gauge

from ops_observe.health.runner import (
    FAIL,
    PASS,
    WARN,
    BoundCheck,
    CheckResult,
    HealthChecks,
    build_checks,
)
from ops_observe.health.service import HealthService
from ops_observe.health.settings import HealthSettings
from ops_observe.metrics import SCRAPE_HOOKS
from ops_observe.root import Settings
from ops_observe.suite import Suite

logger = logging.getLogger("ops_observe.health")

# Beyond the slowest check's timeout, what a scrape waits for the loop to pick the run up and finish.
SCRAPE_MARGIN = 0.25

# The value of <ns>_health_check_status for each state; alerts fire on "< 1" (warn) or "== 0" (fail).
STATUS_VALUES = {PASS: 1.0, WARN: 0.5, FAIL: 0.0}

SETTINGS = HealthSettings
"""The ``[ops_observe.health]`` section."""


def validate(settings: Settings) -> None:
    """Build the checks once (their plugins loaded, their options bound to each class's signature).

    Part of :func:`ops_observe.settings.validate`, which ``wrap()`` and every ``ops-observe`` command
    run first: a misspelt plugin or option is a :class:`ops_observe.SettingsError` naming its key,
    even when ``health.enabled`` is false.
    """
    global _validated
    _validated = (weakref.ref(settings), build_checks(settings))


# The checks built by the last validate(), for the install() that wrap() runs right after it:
# a check's constructor runs once per wrapped app, not once to validate and again to serve.
_validated: tuple[weakref.ref[Settings], list[BoundCheck]] | None = None


def _checks_of(settings: Settings) -> list[BoundCheck]:
    global _validated
    if _validated is not None and _validated[0]() is settings:
        checks = _validated[1]
        _validated = None
        return checks
    return build_checks(settings)


def install(suite: Suite) -> None:
    """Register the health endpoints and lifespan hooks of one wrapped app.

    The checks are built (and their options validated) here, so a bad check setting stops
    ``wrap()`` with a :class:`ops_observe.SettingsError` instead of failing on the first probe.
    The :class:`HealthService` is kept as ``suite.state["health"]``.
    """
    health = suite.settings.health
    if not health.enabled:
        return
    checks = HealthChecks(
        _checks_of(suite.settings),
        cache_seconds=health.cache_seconds,
        observe=_metrics(suite),
    )
    service = HealthService(suite.settings, checks)
    suite.state["health"] = service
    base = health.path.rstrip("/")
    suite.add_endpoint(health.path, service.liveness, setting="health.path")
    suite.add_endpoint(f"{base}/ready", service.readiness, setting="health.path")
    suite.add_endpoint(f"{base}/detailed", service.detailed, setting="health.path")
    if health.livez_path:
        suite.add_endpoint(health.livez_path, service.livez, setting="health.livez_path")
    if health.readyz_path:
        suite.add_endpoint(health.readyz_path, service.readyz, setting="health.readyz_path")
    suite.on_startup(service.startup)
    suite.on_shutdown(service.shutdown)
    if checks.checks:
        refresh = ScrapeRefresh(checks)
        suite.on_startup(refresh.bind)
        suite.state.setdefault(SCRAPE_HOOKS, []).append(refresh)


class ScrapeRefresh:
    """Before a scrape, rerun the checks whose result is older than ``health.cache_seconds``.

    Called by the metrics feature in the thread that renders the scrape (an anyio worker thread for
    ``/metrics``, the exporter's own thread on ``metrics.port``); the checks run on the app's event
    loop, where their async drivers live, through :class:`HealthChecks`, so a scrape and a probe
    arriving together share one run. The scrape waits at most the slowest check's timeout (plus
    :data:`SCRAPE_MARGIN`); a run that takes longer goes on and updates the gauge when it ends.
    """

    def __init__(self, checks: HealthChecks) -> None:
        self.checks = checks
        self.limit = max(c.timeout for c in checks.checks.values()) + SCRAPE_MARGIN
        self.token: anyio.lowlevel.EventLoopToken | None = None
        self.loop_thread: int | None = None

    def bind(self) -> None:
        """Lifespan start-up: remember the app's event loop, for scrapes served outside its worker threads."""
        self.token = anyio.lowlevel.current_token()
        self.loop_thread = threading.get_ident()

    def __call__(self) -> None:
        if threading.get_ident() == self.loop_thread:
            return  # rendered on the loop itself: waiting for the loop here would deadlock
        try:
            try:
                # /metrics: an anyio worker thread of the loop serving this very scrape.
                anyio.from_thread.run(self._refresh)
            except anyio.NoEventLoopError:
                if self.token is None:
                    raise
                # metrics.port: the exporter's own thread; back to the loop seen at start-up.
                anyio.from_thread.run(self._refresh, token=self.token)
        except (anyio.NoEventLoopError, anyio.RunFinishedError) as exc:
            # No loop to run on (no lifespan, or the loop has ended): the last results are shown.
            logger.debug("health: the scrape could not refresh the checks: %s", exc)
        except Exception:  # the scrape must go on with the last results
            logger.exception("health: refreshing the checks for a scrape failed")

    async def _refresh(self) -> None:
        with anyio.move_on_after(self.limit):
            await self.checks.run()


def _metrics(suite: Suite) -> Callable[[CheckResult], None]:
    """The hook that turns each fresh check result into ``<ns>_health_check_status`` and its duration."""
    ns = suite.settings.metric_namespace
    status = Gauge(
        f"{ns}_health_check_status",
        "Last result of a health check: 1 pass, 0.5 warn, 0 fail.",
        ["check"],
        registry=suite.registry,
    )
    duration = Gauge(
        f"{ns}_health_check_duration_seconds",
        "Duration of the last run of a health check, in seconds.",
        ["check"],
        registry=suite.registry,
    )

    def observe(result: CheckResult) -> None:
        status.labels(result.name).set(STATUS_VALUES[result.status])
        duration.labels(result.name).set(result.duration_ms / 1000)

    return observe
