"""Building checks from the settings and running them: concurrently, bounded, cached, single-flight.

Each check runs at most once per cache interval, however many probes ask: the first asker starts
the run, every concurrent asker awaits that same run (single flight), and later askers get the
cached result until it is older than the interval. So a probe storm never becomes a storm on the
database, and a client that disconnects never cancels a run others are waiting for.

Everything here runs on anyio, so under asyncio and under trio alike (Starlette and FastAPI run on
anyio, and some users serve them with trio).
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import re
import threading
import time
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import anyio
import anyio.from_thread
import anyio.lowlevel

from ops_observe import plugins
from ops_observe.errors import PluginError, SettingsError
from ops_observe.health.base import HealthCheckError
from ops_observe.masking import MASK, is_secret_key, mask_secrets, mask_url
from ops_observe.root import Settings

logger = logging.getLogger("ops_observe.health")

# Message templates, imported by the tests.
UNKNOWN_OPTION = "check {check!r} (plugin {plugin!r}) has no option {option!r}{hint}"
MISSING_OPTION = "check {check!r} (plugin {plugin!r}) needs the option {option!r}"
BAD_OPTION = "check {check!r} (plugin {plugin!r}) option {option!r}: expected {expected}, got {value!r}"
REJECTED = "check {check!r} (plugin {plugin!r}) rejected its options: {error}"
TIMED_OUT = "timed out after {timeout:g} s"
UNEXPECTED = "unexpected {type}: {message}"

PASS, WARN, FAIL = "pass", "warn", "fail"
_MAX_MESSAGE = 300
_KV_PASSWORD = re.compile(r"\bpassword\s*=\s*('[^']*'|\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one run of one check, as shown in the answers (already masked)."""

    name: str
    plugin: str
    critical: bool
    status: str
    duration_ms: float
    checked_at: float
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the result: status, duration, criticality, then error and details if any."""
        out: dict[str, Any] = {
            "status": self.status,
            "duration_ms": self.duration_ms,
            "critical": self.critical,
            "plugin": self.plugin,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.details:
            out["details"] = dict(self.details)
        return out


class BoundCheck:
    """One configured check instance: its name, criticality, timeout and the secrets to mask in its output.

    Args:
        name: The check's name (its settings table name).
        instance: The check object, with an ``async def check()`` or a plain ``def check()``.
        plugin: The entry-point name it was built from, shown in the answers.
        critical: Whether it decides readiness.
        timeout: Seconds a run may take before it fails.
        secrets: Strings (passwords, tokens) replaced by ``****`` wherever its output is shown.
    """

    def __init__(
        self,
        name: str,
        instance: Any,
        *,
        plugin: str = "",
        critical: bool = True,
        timeout: float = 5.0,
        secrets: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.instance = instance
        self.plugin = plugin or type(instance).__name__
        self.critical = critical
        self.timeout = timeout
        method = instance.check
        self._call: Callable[[], Any] = method
        self._is_async = inspect.iscoroutinefunction(method)
        self._secrets = _ordered(secrets)

    def mask(self, text: str) -> str:
        """``text`` with URL passwords and this check's known secrets hidden, cut to a sane length."""
        return _mask(text, self._secrets)

    async def run(self) -> CheckResult:
        """Run the check once, bounded by its timeout; never raises (except on cancellation)."""
        started = time.perf_counter()
        status, error, details = PASS, None, None
        try:
            with anyio.fail_after(self.timeout):
                if self._is_async:
                    returned = await self._call()
                else:
                    returned = await in_thread(self._call, self.name)
                    if inspect.isawaitable(returned):
                        # A plain callable that hands back a coroutine (a partial, a callable object):
                        # await it here, within the same deadline.
                        returned = await returned
            if isinstance(returned, Mapping):
                details = returned
        except TimeoutError:  # anyio's fail_after raises the builtin, on every backend
            status, error = FAIL, TIMED_OUT.format(timeout=self.timeout)
        except HealthCheckError as exc:
            status, error, details = exc.status, self.mask(exc.message), exc.details
        except Exception as exc:  # every failure of a check is a result, never a 500
            # Not raised on purpose: the type tells what happened, the message may tell too much.
            status, error = (
                FAIL,
                UNEXPECTED.format(type=type(exc).__name__, message=self.mask(str(exc))),
            )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        return CheckResult(
            self.name,
            self.plugin,
            self.critical,
            status,
            duration_ms,
            time.time(),
            error,
            self._safe_details(details),
        )

    def _safe_details(self, details: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if not details:
            return {}
        return self._mask_strings(mask_secrets(details))  # type: ignore[no-any-return]

    def _mask_strings(self, value: Any) -> Any:
        # Every string at any depth: a driver's detail may echo an option anywhere.
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {k: self._mask_strings(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask_strings(v) for v in value]
        return value


def _ordered(secrets: Iterable[str]) -> list[str]:
    # Longest first, so that a secret containing another is masked whole.
    return sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL/DSN passwords and the given secrets hidden, cut to a sane length."""
    return _mask(text, _ordered(secrets))


def _mask(text: str, ordered_secrets: list[str]) -> str:
    text = mask_url(text)
    for secret in ordered_secrets:
        text = text.replace(secret, MASK)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


async def in_thread(fn: Callable[[], Any], name: str) -> Any:
    """Run a sync check in a daemon thread of its own and await its outcome (any anyio backend).

    Not a worker thread of the loop or of anyio: a check that hangs forever would keep
    ``asyncio.run()`` (which joins the default executor) or the interpreter (which joins every
    non-daemon thread, anyio's workers included) from exiting. Cancelling the awaiting task (the
    check's timeout) abandons the thread: a hung dependency costs the check its timeout, never a
    hang; the thread ends whenever the call returns, and its outcome is dropped.
    """
    token = anyio.lowlevel.current_token()
    done = anyio.Event()  # made here, on the loop that awaits it
    outcome: list[tuple[Any, BaseException | None]] = []

    def target() -> None:
        try:
            outcome.append((fn(), None))
        except BaseException as exc:  # handed to the awaiting task, which reports it
            outcome.append((None, exc))
        try:
            anyio.from_thread.run_sync(done.set, token=token)
        except anyio.RunFinishedError:
            pass  # the loop ended while the check ran; nobody waits for it any more

    threading.Thread(target=target, name=f"ops-observe-check-{name}", daemon=True).start()
    await done.wait()
    value, error = outcome[0]
    if error is not None:
        raise error
    return value


@dataclass(eq=False)
class _Flight:
    """One run of one check that concurrent probes share; bound to the event loop it started on."""

    token: anyio.lowlevel.EventLoopToken
    done: anyio.Event = field(default_factory=anyio.Event)
    result: CheckResult | None = None


class HealthChecks:
    """The configured checks of one app, with the result cache and single-flight runs.

    Args:
        checks: The checks, by name.
        cache_seconds: How long a result is reused; ``0`` runs every check for every probe
            (concurrent probes still share one run).
        observe: Called with every fresh result (the metrics hook).
        clock: Monotonic seconds, for the cache's age (injectable for tests).
    """

    def __init__(
        self,
        checks: Sequence[BoundCheck],
        *,
        cache_seconds: float = 1.0,
        observe: Callable[[CheckResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checks = {c.name: c for c in checks}
        self.critical = tuple(c.name for c in checks if c.critical)
        self.cache_seconds = cache_seconds
        self.observe = observe
        self.clock = clock
        self._cache: dict[str, tuple[float, CheckResult]] = {}
        self._inflight: dict[str, _Flight] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to the detached runs

    async def run(self, names: Iterable[str] | None = None) -> dict[str, CheckResult]:
        """Results of the named checks (all when ``None``), concurrently, in the configured order."""
        wanted = [self.checks[n] for n in (self.checks if names is None else names)]
        # The common case of a probe: every result is fresh; answer without making a task each.
        now = self.clock()
        fresh: dict[str, CheckResult] = {}
        for check in wanted:
            cached = self._cache.get(check.name)
            if cached is None or now - cached[0] >= self.cache_seconds:
                break
            fresh[check.name] = cached[1]
        else:
            return fresh
        results: dict[str, CheckResult] = {}

        async def collect(check: BoundCheck) -> None:
            results[check.name] = await self._get(check)

        async with anyio.create_task_group() as group:
            for check in wanted:
                group.start_soon(collect, check)
        return {c.name: results[c.name] for c in wanted}

    async def warm_up(self) -> dict[str, CheckResult]:
        """Run every check once, concurrently, each bounded by its timeout; the results are not kept.

        A check's first run in a process pays for what only happens once: importing its driver,
        the first DNS look-up, TLS and connection set-up, and (the checks running together) a share
        of the others' imports, which hold the GIL: about 400 ms each, even for ``disk``, where
        later runs take a few. Run at lifespan start-up, this makes the first probe report what a
        probe costs. The results are neither cached, nor observed (metrics), nor logged as state
        changes: the first probe runs the checks again. Never raises but on cancellation.
        """
        results: dict[str, CheckResult] = {}

        async def one(check: BoundCheck) -> None:
            results[check.name] = await check.run()

        async with anyio.create_task_group() as group:
            for check in self.checks.values():
                group.start_soon(one, check)
        return {name: results[name] for name in self.checks}

    async def _get(self, check: BoundCheck) -> CheckResult:
        while True:
            cached = self._cache.get(check.name)
            if cached is not None and self.clock() - cached[0] < self.cache_seconds:
                return cached[1]
            token = anyio.lowlevel.current_token()
            flight = self._inflight.get(check.name)
            if flight is None or flight.token != token:  # none yet, or one of a loop that is gone
                flight = _Flight(token)
                self._inflight[check.name] = flight
                if not self._detach(flight, check):
                    # trio: every cancellation is a cancel scope, so a shield keeps the run going for
                    # the others when this prober goes away (it is bounded by the check's timeout).
                    with anyio.CancelScope(shield=True):
                        await self._fly(check, flight)
            await flight.done.wait()
            if flight.result is not None:
                return flight.result
            # The run was cancelled from outside (its loop shutting down): run it again.

    def _detach(self, flight: _Flight, check: BoundCheck) -> bool:
        """Under asyncio, run the flight in a task of its own; ``False`` on other backends.

        A native ``Task.cancel()`` (``asyncio.wait_for`` in the user's code, a server cancelling a
        request) goes through anyio's shields, so the run must not be in the prober's task there.
        """
        loop = flight.token.native_token
        if not isinstance(loop, asyncio.AbstractEventLoop):
            return False
        task = loop.create_task(self._fly(check, flight))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _fly(self, check: BoundCheck, flight: _Flight) -> None:
        try:
            result = await check.run()
            flight.result = result
        finally:
            if self._inflight.get(check.name) is flight:
                del self._inflight[check.name]
            flight.done.set()
        previous = self._cache.get(check.name)
        self._cache[check.name] = (self.clock(), result)
        self._log_change(previous[1] if previous else None, result)
        if self.observe is not None:
            try:
                self.observe(result)
            except Exception:  # a metrics hook's bug must not fail the probes sharing this run
                logger.exception("health: observing the result of %s failed", check.name)

    @staticmethod
    def _log_change(previous: CheckResult | None, result: CheckResult) -> None:
        # Only transitions are logged: a probe every few seconds must not flood the log.
        if previous is not None and previous.status == result.status:
            return
        if result.status == PASS:
            if previous is not None:
                logger.info("health check %s recovered", result.name)
        else:
            logger.warning("health check %s: %s: %s", result.name, result.status, result.error)


# -- building from the settings -----------------------------------------------------------------


def build_checks(settings: Settings) -> list[BoundCheck]:
    """The checks of ``[ops_observe.health.checks]``, loaded through their entry points.

    Raises :class:`SettingsError` naming the check for a plugin that is not installed or fails to
    load, an option the check class does not take, a missing required option, or options the
    class rejects.
    """
    health = settings.health
    source = settings.source
    built = []
    for name, spec in health.checks.items():
        key = f"health.checks.{name}"
        try:
            cls = plugins.get(plugins.HEALTH_CHECKS, spec.plugin).load()
        except PluginError as exc:
            raise SettingsError(source, f"{key}.plugin", str(exc)) from exc.__cause__
        timeout = spec.timeout if spec.timeout is not None else health.timeout
        options = dict(spec.options)
        secrets = secrets_of(options)
        kwargs = bind_options(
            cls,
            options,
            check=name,
            plugin=spec.plugin,
            timeout=timeout,
            source=source,
            key=key,
        )
        try:
            instance = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            error = REJECTED.format(check=name, plugin=spec.plugin, error=mask_text(str(exc), secrets))
            raise SettingsError(source, key, error) from None
        built.append(
            BoundCheck(
                name,
                instance,
                plugin=spec.plugin,
                critical=spec.critical,
                timeout=timeout,
                secrets=secrets,
            )
        )
    return built


def bind_options(
    cls: type,
    options: Mapping[str, Any],
    *,
    check: str,
    plugin: str,
    timeout: float,
    source: str = "<dict>",
    key: str = "",
) -> dict[str, Any]:
    """Match ``options`` against the constructor of ``cls``; convert strings from ``${VAR}`` to numbers.

    A constructor that takes ``timeout`` receives the check's effective timeout, so that a driver
    can bound its own connect and statement times by it.
    """
    parameters = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = {
        n: p
        for n, p in parameters.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    hints = _init_hints(cls)
    kwargs: dict[str, Any] = {}
    for option, value in options.items():
        if option not in named and not takes_any:
            known = [n for n in named if n != "timeout"]
            close = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
            if close:
                hint = f"; did you mean {close[0]!r}?"
            else:
                hint = "; it takes: " + (", ".join(known) or "no options")
            raise SettingsError(
                source,
                f"{key}.{option}",
                UNKNOWN_OPTION.format(check=check, plugin=plugin, option=option, hint=hint),
            )
        kwargs[option] = _coerce(hints.get(option), value, check, plugin, option, source, f"{key}.{option}")
    if "timeout" in named:
        kwargs["timeout"] = timeout
    for name, parameter in named.items():
        if parameter.default is inspect.Parameter.empty and name not in kwargs:
            raise SettingsError(
                source,
                f"{key}.{name}",
                MISSING_OPTION.format(check=check, plugin=plugin, option=name),
            )
    return kwargs


def _init_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # unresolvable annotations just mean no conversion
        return {}


_NUMBERS: dict[Any, str] = {int: "an integer", float: "a number", bool: "true or false"}


def _coerce(hint: Any, value: Any, check: str, plugin: str, option: str, source: str, key: str) -> Any:
    """Turn a string (as ``${VAR}`` gives) into the int, float or bool the constructor declares."""
    if not isinstance(value, str) or hint is None:
        return value
    if typing.get_origin(hint) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if str in args or len(args) != 1:
            return value
        hint = args[0]
    if hint not in _NUMBERS:
        return value
    try:
        if hint is bool:
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes", "on")
        return hint(value)
    except ValueError:
        problem = BAD_OPTION.format(
            check=check,
            plugin=plugin,
            option=option,
            expected=_NUMBERS[hint],
            value=value,
        )
        raise SettingsError(source, key, problem) from None


def secrets_of(options: Mapping[str, Any]) -> list[str]:
    """The secret strings inside check options: secret-named values and URL or DSN passwords."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, Mapping):
            found.extend(secrets_of(value))
            continue
        if not isinstance(value, str) or not value:
            continue
        if is_secret_key(str(key)):
            found.append(value)
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.extend({password, unquote(password), quote(unquote(password), safe="")})
        for match in _KV_PASSWORD.finditer(value):
            found.append(match.group(1).strip("'"))
    return found
