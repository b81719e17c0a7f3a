"""The health endpoints of one wrapped app, as plain ASGI callables, and shutdown draining.

``<path>`` (liveness) touches no dependency and answers a body prebuilt at start-up. At lifespan
start-up every check runs once, unreported (a warm-up: see :meth:`HealthService.startup`).
``<path>/ready`` runs the critical checks, ``<path>/detailed`` all checks plus system facts.
``/livez`` and ``/readyz`` answer like the Kubernetes API server (text, ``?verbose``,
``?exclude=``). JSON answers use ``application/health+json`` (the IETF draft's shape) when the
client asks for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.from_thread
import anyio.lowlevel

from ops_observe.access import AccessGuard
from ops_observe.health import system
from ops_observe.health.runner import (
    FAIL,
    PASS,
    WARN,
    CheckResult,
    HealthChecks,
    in_thread,
)
from ops_observe.root import Settings
from ops_observe.types import Receive, Scope, Send

logger = logging.getLogger("ops_observe.health")

JSON = b"application/json"
HEALTH_JSON = b"application/health+json"
TEXT = b"text/plain; charset=utf-8"
_ALLOWED_METHODS = ("GET", "HEAD")
_SHUTTING_DOWN = "shutting down"
_SignalHandler = Any  # signal's handler type: a callable, SIG_DFL, SIG_IGN or None


class HealthService:
    """Answers the health endpoints of one app and knows whether it is draining for shutdown.

    Args:
        settings: The app's settings (the service identity and ``[ops_observe.health]``).
        checks: The configured checks with their cache.
    """

    def __init__(self, settings: Settings, checks: HealthChecks) -> None:
        self.settings = settings
        self.health = settings.health
        self.checks = checks
        self.draining = False
        self._identity = {"service": settings.service_name, "version": settings.version}
        self._live_body = _dumps({"status": PASS, **self._identity})
        self._live_health_json = _dumps(
            {
                "status": PASS,
                "version": settings.version,
                "serviceId": settings.service_name,
            }
        )
        self._guard = AccessGuard(self.health.detailed_allow, self.health.detailed_token)
        self._sigterm = _SigtermDrain(self, self.health.drain_seconds)
        # Here rather than at lifespan start-up: not every server runs the lifespan protocol.
        system.prime_cpu_percent()

    # -- lifespan ---------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Lifespan start-up: catch SIGTERM for draining, then warm the checks up.

        The warm-up (:meth:`HealthChecks.warm_up`) runs every check once, concurrently, so that
        the first probe does not report the one-off cost of first imports and connections. It is
        bounded by the checks' timeouts (start-up takes at most the longest of them) and never
        fails start-up: a check that fails here is only logged, and the first probe runs it again.
        """
        if self.health.handle_sigterm:
            self._sigterm.install()
        if not self.checks.checks:
            return
        started = time.perf_counter()
        try:
            results = await self.checks.warm_up()
        except Exception:  # a bug in the warm-up must not stop the app from serving
            logger.exception("health: the warm-up run of the checks failed")
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        summary = ", ".join(
            f"{r.name} {r.status} {r.duration_ms:.0f} ms" + (f": {r.error}" if r.error else "")
            for r in results.values()
        )
        logger.info("health: warm-up run of the checks at start-up took %.0f ms (%s)", elapsed_ms, summary)

    def shutdown(self) -> None:
        """Lifespan shutdown: readiness fails from now on; the SIGTERM handler is given back."""
        self.start_draining("lifespan shutdown")
        self._sigterm.uninstall()

    def start_draining(self, why: str) -> None:
        """Make readiness answer 503 from now on (liveness stays 200, so nothing restarts the pod)."""
        if not self.draining:
            logger.info("health: %s, readiness answers 503 from now on", why)
        self.draining = True

    # -- endpoints --------------------------------------------------------------------------------

    async def liveness(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``<path>``: 200 with status, service and version; touches no dependency."""
        if await _refuse_method(scope, send):
            return
        if _wants_health_json(scope):
            await _respond(scope, send, 200, self._live_health_json, HEALTH_JSON)
        else:
            await _respond(scope, send, 200, self._live_body, JSON)

    async def readiness(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``<path>/ready``: 200 when every critical check passes (or warns), else 503."""
        if await _refuse_method(scope, send):
            return
        exclude = set(_query(scope).get("exclude", ()))
        if self.draining:
            results: dict[str, CheckResult] = {}
        else:
            results = await self.checks.run(n for n in self.checks.critical if n not in exclude)
        status = FAIL if self.draining else overall(results.values())
        await self._answer(scope, send, status, results, {})

    async def detailed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``<path>/detailed``: every check, system resources, uptime, version, Python and process."""
        if await _refuse_method(scope, send):
            return
        if not self._allowed(scope):
            await _respond(scope, send, 403, _dumps({"error": "forbidden"}), JSON)
            return
        exclude = set(_query(scope).get("exclude", ()))
        names = [n for n in self.checks.checks if n not in exclude]
        results: dict[str, CheckResult] = {}
        facts: dict[str, Any] = {}

        async def run_checks() -> None:
            results.update(await self.checks.run(names))

        async def read_facts() -> None:
            facts.update(await self._facts())

        async with anyio.create_task_group() as group:
            group.start_soon(run_checks)
            group.start_soon(read_facts)
        status = FAIL if self.draining else overall(results.values(), strict=True)
        await self._answer(scope, send, status, results, facts)

    async def livez(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/livez``: ``ok``; with ``?verbose`` the Kubernetes list (``[+]ping ok``)."""
        if await _refuse_method(scope, send):
            return
        verbose = "verbose" in _query(scope)
        body = b"[+]ping ok\nlivez check passed\n" if verbose else b"ok"
        await _respond(scope, send, 200, body, TEXT)

    async def readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/readyz``: ``ok`` or 503 with the Kubernetes list; ``?verbose``, ``?exclude=NAME`` (repeatable)."""
        if await _refuse_method(scope, send):
            return
        query = _query(scope)
        exclude = set(query.get("exclude", ()))
        names = [n for n in self.checks.critical if n not in exclude]
        results = {} if self.draining else await self.checks.run(names)
        lines = []
        for name, result in results.items():
            # Kubernetes withholds the reason: /readyz is often reachable from outside.
            lines.append(f"[+]{name} ok" if result.status != FAIL else f"[-]{name} failed: reason withheld")
        lines.append("[-]shutdown failed: reason withheld" if self.draining else "[+]shutdown ok")
        unknown = sorted(exclude - set(self.checks.checks))
        if unknown:
            lines.append("warn: some health checks cannot be excluded: no matches for " + ", ".join(unknown))
        failed = self.draining or any(r.status == FAIL for r in results.values())
        lines.append("readyz check failed" if failed else "readyz check passed")
        if failed or "verbose" in query:
            await _respond(
                scope,
                send,
                503 if failed else 200,
                ("\n".join(lines) + "\n").encode(),
                TEXT,
            )
        else:
            await _respond(scope, send, 200, b"ok", TEXT)

    # -- helpers ----------------------------------------------------------------------------------

    def _allowed(self, scope: Scope) -> bool:
        """Both configured guards must pass: the client's network, then the bearer token."""
        client = scope.get("client")
        authorization = next((v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"), b"")
        return self._guard.allows(client[0] if client else None, authorization)

    async def _facts(self) -> dict[str, Any]:
        machine: dict[str, Any] = {"error": "reading the system facts timed out"}
        with anyio.move_on_after(self.health.timeout):
            machine = await in_thread(lambda: system.system_info(self.health.disk_path), "system")
        return {
            "system": machine,
            "uptime": system.uptime_info(),
            "version": system.version_info(self.settings),
            "python": system.python_info(),
            "process": system.process_info(),
        }

    def _document(self, status: str, results: Mapping[str, CheckResult], facts: Mapping[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {"status": status, **self._identity}
        if self.draining:
            doc["reason"] = _SHUTTING_DOWN
        doc["checks"] = {name: r.as_dict() for name, r in results.items()}
        doc.update(facts)
        return doc

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        status: str,
        results: Mapping[str, CheckResult],
        facts: Mapping[str, Any],
    ) -> None:
        code = 503 if status == FAIL else 200
        if _wants_health_json(scope):
            await _respond(
                scope,
                send,
                code,
                _dumps(self._health_json(status, results, facts)),
                HEALTH_JSON,
            )
        else:
            await _respond(scope, send, code, _dumps(self._document(status, results, facts)), JSON)

    def _health_json(self, status: str, results: Mapping[str, CheckResult], facts: Mapping[str, Any]) -> dict[str, Any]:
        """The IETF draft (draft-inadarei-api-health-check) shape of an answer."""
        out: dict[str, Any] = {
            "status": status,
            "version": self.settings.version,
            "releaseId": self.settings.commit,
            "serviceId": self.settings.service_name,
            "description": f"health of {self.settings.service_name}",
        }
        if self.draining:
            out["output"] = _SHUTTING_DOWN
        checks: dict[str, list[dict[str, Any]]] = {}
        for name, result in results.items():
            entry: dict[str, Any] = {
                "componentId": name,
                "componentType": result.plugin,
                "observedValue": result.duration_ms,
                "observedUnit": "ms",
                "status": result.status,
                "affectsServiceHealth": result.critical,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.checked_at)),
            }
            if result.error is not None:
                entry["output"] = result.error
            if result.details:
                entry["details"] = dict(result.details)
            checks[f"{name}:responseTime"] = [entry]
        out["checks"] = checks
        if facts:
            out["notes"] = [f"{k}: {v}" for k, v in facts["version"].items()]
            out.update((k, v) for k, v in facts.items() if k != "version")
        return out


def overall(results: Iterable[CheckResult], *, strict: bool = False) -> str:
    """``fail`` when a critical check fails; ``warn`` when one warns (or, ``strict``, a non-critical one fails)."""
    status = PASS
    for result in results:
        if result.status == FAIL and result.critical:
            return FAIL
        if result.status != PASS and (result.critical or strict):
            status = WARN
    return status


def _dumps(doc: Mapping[str, Any]) -> bytes:
    # default=str: a check's details may hold a datetime or a Decimal; show it rather than fail.
    return json.dumps(doc, default=str, separators=(",", ":")).encode()


def _wants_health_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            return HEALTH_JSON in value
    return False


def _query(scope: Scope) -> dict[str, list[str]]:
    raw = scope.get("query_string", b"")
    out: dict[str, list[str]] = {}
    if raw:
        for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            out.setdefault(key, []).append(value)
    return out


async def _refuse_method(scope: Scope, send: Send) -> bool:
    if scope["method"] in _ALLOWED_METHODS:
        return False
    await send(
        {
            "type": "http.response.start",
            "status": 405,
            "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
    return True


async def _respond(scope: Scope, send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {
            "type": "http.response.body",
            "body": b"" if scope["method"] == "HEAD" else body,
        }
    )


class _SigtermDrain:
    """Chains a SIGTERM handler in front of the server's: fail readiness, wait, then let the server stop.

    uvicorn stops accepting connections as soon as its own handler runs; running ours first, and
    handing over only after ``drain_seconds``, gives load balancers time to see the 503 and move
    traffic away while in-flight and new requests are still served.
    """

    def __init__(self, service: HealthService, drain_seconds: float) -> None:
        self.service = service
        self.drain_seconds = drain_seconds
        self._previous: _SignalHandler = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._handler = self._handle
        self._installed = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logger.info("health: not in the main thread, SIGTERM draining is off")
            return
        try:
            # The loop (asyncio or trio) to hand the signal on from once the drain is over.
            self._token = anyio.lowlevel.current_token()
        except RuntimeError:  # anyio's NoEventLoopError: started outside any event loop
            self._token = None
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._handler)
        self._installed = True

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._installed = False
        if signal.getsignal(signal.SIGTERM) is self._handler:
            signal.signal(
                signal.SIGTERM,
                self._previous if self._previous is not None else signal.SIG_DFL,
            )

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        again = self.service.draining
        self.service.start_draining("SIGTERM")
        token = self._token
        if self.drain_seconds > 0 and not again and token is not None and not _finished(token):
            logger.info("health: draining for %g s before the server stops", self.drain_seconds)
            # A timer thread rather than the loop's own timers: asyncio has call_later, trio has no
            # equivalent callable from a signal handler. The hand-over itself hops back onto the
            # loop (the main thread), where the server's handler expects to run.
            timer = threading.Timer(self.drain_seconds, self._forward_on_loop, (token, signum, frame))
            timer.name = "ops-observe-sigterm-drain"
            timer.daemon = True
            timer.start()
        else:
            self._forward(signum, frame)

    def _forward_on_loop(self, token: anyio.lowlevel.EventLoopToken, signum: int, frame: FrameType | None) -> None:
        try:
            anyio.from_thread.run_sync(self._forward, signum, frame, token=token)
        except anyio.RunFinishedError:
            pass  # the loop ended during the drain: the server already stopped, as a dropped timer did

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action (terminate): restore it and raise the signal again.
            self.uninstall()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def _finished(token: anyio.lowlevel.EventLoopToken) -> bool:
    """Whether the loop of ``token`` is known to be gone (asyncio tells; for trio the hop finds out)."""
    loop = token.native_token
    return isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed()
