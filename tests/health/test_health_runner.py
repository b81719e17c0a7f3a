"""The runner: timeouts, threads for sync checks, typed errors, masking, the cache and single flight."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from health_fixtures import Blackhole, blackhole_fixture  # noqa: F401 - pytest fixtures
from health_support import client, wrap
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_observe import SettingsError
from ops_observe.health import HealthCheck, ServiceUnavailable, ServiceWarning, UnexpectedResult
from ops_observe.health.runner import (
    BAD_OPTION,
    MISSING_OPTION,
    REJECTED,
    TIMED_OUT,
    UNKNOWN_OPTION,
    BoundCheck,
    HealthChecks,
    bind_options,
)
from ops_observe.masking import MASK


class Counting(HealthCheck):
    """Counts its runs; each run takes ``delay`` seconds, so concurrent probes overlap."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.runs = 0

    async def check(self) -> dict[str, int]:
        self.runs += 1
        await asyncio.sleep(self.delay)
        return {"runs": self.runs}


class Hangs(HealthCheck):
    async def check(self) -> None:
        await asyncio.sleep(3600)


class HangsInThread(HealthCheck):
    def __init__(self) -> None:
        self.release = threading.Event()

    def check(self) -> None:
        self.release.wait(30)


class SyncCheck(HealthCheck):
    def check(self) -> dict[str, Any]:
        return {"thread": threading.current_thread().name}


class Raises(HealthCheck):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def check(self) -> None:
        raise self.error


def run(*checks: BoundCheck, cache_seconds: float = 0.0) -> dict[str, Any]:
    results = asyncio.run(HealthChecks(list(checks), cache_seconds=cache_seconds).run())
    return {name: r.as_dict() for name, r in results.items()}


def test_a_hanging_check_fails_at_its_timeout_and_the_others_still_answer() -> None:
    started = time.monotonic()
    results = run(BoundCheck("hang", Hangs(), timeout=0.3), BoundCheck("ok", SyncCheck(), timeout=0.3))
    elapsed = time.monotonic() - started
    assert results["hang"]["status"] == "fail"
    assert results["hang"]["error"] == TIMED_OUT.format(timeout=0.3)
    assert results["ok"]["status"] == "pass"
    assert elapsed < 0.3 + 1.0


def test_a_sync_check_runs_in_a_thread_and_a_hanging_one_is_bounded_too() -> None:
    hang = HangsInThread()
    started = time.monotonic()
    results = run(BoundCheck("sync", SyncCheck()), BoundCheck("stuck", hang, timeout=0.3))
    assert time.monotonic() - started < 0.3 + 1.0
    hang.release.set()
    assert results["sync"]["details"]["thread"].startswith("ops-observe-check-sync")
    assert results["stuck"]["status"] == "fail"


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (ServiceUnavailable("db down"), "fail", "db down"),
        (UnexpectedResult("answered 500"), "fail", "answered 500"),
        (ServiceWarning("replica lag 30 s"), "warn", "replica lag 30 s"),
        (KeyError("x"), "fail", "unexpected KeyError: 'x'"),
        (
            RuntimeError("postgresql://u:hunter2@db/x failed"),
            "fail",
            f"unexpected RuntimeError: postgresql://u:{MASK}@db/x failed",
        ),
        (ValueError("x" * 1000), "fail", None),
    ],
)
def test_typed_errors_and_unexpected_ones(error: Exception, status: str, message: str | None) -> None:
    result = run(BoundCheck("c", Raises(error)))["c"]
    assert result["status"] == status
    if message is not None:
        assert result["error"] == message
    else:
        # A huge message is cut: the type and the start of the message are enough.
        assert result["error"].startswith("unexpected ValueError: xxx") and result["error"].endswith("…")
        assert len(result["error"]) < 350


def test_details_of_a_warning_are_shown_masked() -> None:
    details = {
        "lag_s": 30,
        "password": "pw",
        "url": "redis://:abc123@cache/0",
        "nested": {"echo": ["the key is k3y-value!"]},
    }
    error = ServiceWarning("slow", details=details)
    result = run(BoundCheck("c", Raises(error), secrets=["k3y-value!"]))["c"]
    assert result["details"] == {
        "lag_s": 30,
        "password": MASK,
        "url": f"redis://:{MASK}@cache/0",
        "nested": {"echo": [f"the key is {MASK}"]},
    }


@settings(max_examples=50, deadline=None)
@given(password=st.text(alphabet=st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=6, max_size=30))
def test_no_option_secret_reaches_an_error_message(password: str) -> None:
    # The check echoes its options in a raw error, the way some drivers do.
    from urllib.parse import quote

    dsn = f"postgresql://app:{quote(password, safe='')}@db:5432/app"
    options = {"dsn": dsn, "api_key": password + "k"}
    bound = BoundCheck("db", Raises(RuntimeError(f"{dsn} {password} {password}k")), secrets=_secrets(options))
    message = asyncio.run(bound.run()).error or ""
    assert password not in message
    assert quote(password, safe="") not in message


def _secrets(options: dict[str, Any]) -> list[str]:
    from ops_observe.health.runner import secrets_of

    return secrets_of(options)


def test_repr_of_a_check_hides_its_secrets() -> None:
    class WithDsn(HealthCheck):
        def __init__(self) -> None:
            self.dsn = "postgresql://app:hunter2@db/app"
            self.token = "abc"

        async def check(self) -> None:
            return None

    text = repr(WithDsn())
    assert "hunter2" not in text and "abc" not in text
    assert text.startswith("WithDsn(dsn=")


def test_two_hundred_concurrent_probes_run_the_check_once() -> None:
    counting = Counting(delay=0.1)
    checks = HealthChecks([BoundCheck("dep", counting)], cache_seconds=60)

    async def storm() -> list[str]:
        results = await asyncio.gather(*(checks.run() for _ in range(200)))
        return [r["dep"].status for r in results]

    assert asyncio.run(storm()) == ["pass"] * 200
    assert counting.runs == 1


def test_the_check_runs_again_once_the_interval_is_over() -> None:
    counting = Counting(delay=0)
    now = [100.0]
    checks = HealthChecks([BoundCheck("dep", counting)], cache_seconds=5, clock=lambda: now[0])

    async def probes() -> list[int]:
        runs = []
        for advance in (0, 1, 3.5, 0.75, 4.5, 0.5):
            now[0] += advance
            await checks.run()
            runs.append(counting.runs)
        return runs

    # Cached until the result is 5 s old: runs at t=100, t=105.25 and t=110.25 (exactly 5 s later).
    assert asyncio.run(probes()) == [1, 1, 1, 2, 2, 3]


def test_200_concurrent_ready_requests_probe_the_dependency_once_per_interval() -> None:
    counting = Counting(delay=0.1)
    app = wrap({"cache_seconds": 60})
    app.suite.state["health"].checks = HealthChecks([BoundCheck("dep", counting)], cache_seconds=60)

    async def storm() -> list[int]:
        async with client(app) as c:
            responses = await asyncio.gather(*(c.get("/health/ready") for _ in range(200)))
        return [r.status_code for r in responses]

    assert asyncio.run(storm()) == [200] * 200
    assert counting.runs == 1


def test_a_prober_going_away_does_not_cancel_the_run_others_wait_for() -> None:
    counting = Counting(delay=0.2)
    checks = HealthChecks([BoundCheck("dep", counting)], cache_seconds=60)

    async def go() -> str:
        first = asyncio.ensure_future(checks.run())
        second = asyncio.ensure_future(checks.run())
        await asyncio.sleep(0.05)
        first.cancel()
        return (await second)["dep"].status

    assert asyncio.run(go()) == "pass"
    assert counting.runs == 1


def test_the_blackhole_fails_at_the_timeout_and_never_hangs(blackhole: Blackhole) -> None:
    app = wrap(
        {
            "timeout": 0.5,
            "checks": {
                "tcp": {
                    "plugin": "tcp",
                    "host": "127.0.0.1",
                    "port": blackhole.port,
                    "send": "PING\r\n",
                    "expect": "+PONG",
                },
                "http": {"plugin": "http", "url": f"http://127.0.0.1:{blackhole.port}/health"},
                "redis": {"plugin": "redis", "url": f"redis://127.0.0.1:{blackhole.port}/0"},
                "postgres": {"plugin": "postgres", "dsn": f"postgresql://u:pw@127.0.0.1:{blackhole.port}/db"},
            },
        }
    )

    async def go() -> Any:
        async with client(app) as c:
            return await c.get("/health/ready")

    started = time.monotonic()
    response = asyncio.run(go())
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 0.5 + 1.5
    checks = response.json()["checks"]
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(
        ["tcp", "http", "redis", "postgres"], "fail"
    )
    assert all(c["duration_ms"] >= 400 for c in checks.values())  # each waited for its timeout
    # The listener did accept (its thread may lag behind the kernel under load): only the answer never came.
    deadline = time.monotonic() + 5
    while len(blackhole.accepted) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(blackhole.accepted) >= 3


def test_a_plain_check_handing_back_a_coroutine_is_awaited() -> None:
    class Wrapper:
        def __init__(self) -> None:
            self.inner = Counting(delay=0)

        def check(self) -> Any:
            return self.inner.check()  # a coroutine, made in the check's thread

    result = run(BoundCheck("c", Wrapper()))["c"]
    assert result["status"] == "pass" and result["details"] == {"runs": 1}


def test_a_check_without_options_says_so() -> None:
    class Bare:
        def check(self) -> None:
            return None

    with pytest.raises(SettingsError, match="has no option 'x'; it takes: no options"):
        bind_options(Bare, {"x": 1}, check="c", plugin="p", timeout=1)


# -- options against the check's signature ---------------------------------------------------------


class Takes:
    def __init__(self, host: str, *, port: int = 1, ratio: float = 0.5, on: bool = False, timeout: float = 1) -> None:
        self.kwargs = {"host": host, "port": port, "ratio": ratio, "on": on, "timeout": timeout}

    def check(self) -> None:
        return None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"host": "h"}, {"host": "h", "timeout": 2.5}),
        (
            {"host": "h", "port": "80", "ratio": "0.25", "on": "yes"},
            {"host": "h", "port": 80, "ratio": 0.25, "on": True, "timeout": 2.5},
        ),
        ({"host": "h", "port": 80}, {"host": "h", "port": 80, "timeout": 2.5}),
    ],
)
def test_options_bind_with_strings_from_the_environment_converted(
    options: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert bind_options(Takes, options, check="c", plugin="p", timeout=2.5) == expected


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        (
            {"host": "h", "prot": 1},
            "health.checks.c.prot",
            UNKNOWN_OPTION.format(check="c", plugin="p", option="prot", hint="; did you mean 'port'?"),
        ),
        (
            {"host": "h", "colour": "red"},
            "health.checks.c.colour",
            UNKNOWN_OPTION.format(check="c", plugin="p", option="colour", hint="; it takes: host, port, ratio, on"),
        ),
        ({}, "health.checks.c.host", MISSING_OPTION.format(check="c", plugin="p", option="host")),
        (
            {"host": "h", "port": "eighty"},
            "health.checks.c.port",
            BAD_OPTION.format(check="c", plugin="p", option="port", expected="an integer", value="eighty"),
        ),
        (
            {"host": "h", "on": "maybe"},
            "health.checks.c.on",
            BAD_OPTION.format(check="c", plugin="p", option="on", expected="true or false", value="maybe"),
        ),
    ],
)
def test_bad_options_are_settings_errors_naming_the_check_and_option(
    options: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        bind_options(Takes, options, check="c", plugin="p", timeout=1, source="ops_observe.toml", key="health.checks.c")
    assert caught.value.key == key
    assert str(caught.value) == f"ops_observe.toml: {key}: {message}"


@pytest.mark.parametrize(
    ("check", "key", "fragment"),
    [
        ({"plugin": "tcp", "host": "db", "port": 5432, "hots": "x"}, "health.checks.db.hots", "has no option 'hots'"),
        ({"plugin": "tcp", "port": 5432}, "health.checks.db.host", "needs the option 'host'"),
        ({"plugin": "tcp", "host": "db", "port": 70000}, "health.checks.db", "port must be between 1 and 65535"),
        ({"plugin": "http", "url": "ftp://u:hunter2@x/"}, "health.checks.db", "url must start with http://"),
        ({"plugin": "nope"}, "health.checks.db.plugin", "no plugin named 'nope' is installed"),
    ],
)
def test_wrap_refuses_bad_check_settings(check: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        wrap({"checks": {"db": check}})
    assert caught.value.key == key
    assert fragment in str(caught.value)
    assert "hunter2" not in str(caught.value)
    if key.endswith(".hots"):
        assert str(caught.value).startswith(
            "<dict>: health.checks.db.hots: "
            + UNKNOWN_OPTION.format(check="db", plugin="tcp", option="hots", hint="; did you mean 'host'?")
        )
    if key == "health.checks.db" and "port" in fragment:
        assert REJECTED.split("{")[0] in str(caught.value)
