"""Checks come from entry points: a third party's throwaway distribution, broken plugins, no driver in the core."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from health_fixtures import fresh_plugins_fixture, third_party_dist_fixture  # noqa: F401 - pytest fixtures
from health_support import client, get, wrap

from ops_observe import SettingsError, plugins
from ops_observe.health.checks import DiskCheck, HttpCheck, MemoryCheck, TcpCheck


def test_a_third_party_check_is_discovered_and_shown_in_ready(third_party_dist: Path) -> None:
    spec = plugins.get(plugins.HEALTH_CHECKS, "acme")
    assert spec.distribution == "acme-health 1.0"
    app = wrap({"checks": {"acme": {"plugin": "acme", "answer": "yes"}}})
    response = get(app, "/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["acme"] == {
        "status": "pass",
        "duration_ms": response.json()["checks"]["acme"]["duration_ms"],
        "critical": True,
        "plugin": "acme",
        "details": {"answer": "yes"},
    }
    failing = wrap({"checks": {"acme": {"plugin": "acme", "fail": "true"}}})  # a string, as ${VAR} gives
    response = get(failing, "/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["acme"]["error"] == "acme is down"


def test_a_probe_storm_reaches_a_third_party_check_once_per_interval(third_party_dist: Path) -> None:
    import acme_health_check  # type: ignore[import-not-found]

    app = wrap({"cache_seconds": 60, "checks": {"acme": {"plugin": "acme", "answer": "storm"}}})

    async def storm() -> list[int]:
        async with client(app) as c:
            responses = await asyncio.gather(*(c.get("/health/ready") for _ in range(200)))
        return [r.status_code for r in responses]

    assert asyncio.run(storm()) == [200] * 200
    assert acme_health_check.PROBES == ["storm"]


def test_a_check_is_built_once_per_wrapped_app_though_wrap_validates_first(third_party_dist: Path) -> None:
    import acme_health_check

    first = wrap({"checks": {"acme": {"plugin": "acme", "answer": "one"}}})
    second = wrap({"checks": {"acme": {"plugin": "acme", "answer": "two"}}})
    assert acme_health_check.BUILT == ["one", "two"]
    # Each app has its own instance, and serves with it.
    assert get(first, "/health/ready").json()["checks"]["acme"]["details"] == {"answer": "one"}
    assert get(second, "/health/ready").json()["checks"]["acme"]["details"] == {"answer": "two"}
    # Validating alone (as every ops-observe command does) builds them too, to bind their options.
    from ops_observe.settings import load_settings, validate

    validate(load_settings({"health": {"checks": {"acme": {"plugin": "acme", "answer": "three"}}}}))
    assert acme_health_check.BUILT == ["one", "two", "three"]


def test_a_third_party_option_typo_names_the_check_and_option(third_party_dist: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        wrap({"checks": {"acme": {"plugin": "acme", "anwser": "x"}}})
    assert caught.value.key == "health.checks.acme.anwser"
    assert "check 'acme' (plugin 'acme') has no option 'anwser'; did you mean 'answer'?" in str(caught.value)


def test_a_plugin_that_fails_to_import_names_plugin_distribution_and_cause(third_party_dist: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        wrap({"checks": {"x": {"plugin": "broken"}}})
    message = str(caught.value)
    assert caught.value.key == "health.checks.x.plugin"
    assert "'broken'" in message and "acme-health 1.0" in message and "acme_health_missing" in message


def test_the_core_checks_come_through_the_entry_point_group(fresh_plugins: None) -> None:
    loaded = {name: plugins.get(plugins.HEALTH_CHECKS, name).load() for name in ("http", "tcp", "disk", "memory")}
    assert loaded == {"http": HttpCheck, "tcp": TcpCheck, "disk": DiskCheck, "memory": MemoryCheck}
    assert plugins.get(plugins.HEALTH_CHECKS, "postgres").distribution.startswith("ops-observe-postgres ")
    assert plugins.get(plugins.HEALTH_CHECKS, "redis").distribution.startswith("ops-observe-redis ")


def test_the_core_never_imports_a_driver(tmp_path: Path) -> None:
    # In a fresh interpreter: wrap an app with every core check and probe it; psycopg and redis stay out.
    script = textwrap.dedent(
        """
        import asyncio, sys, httpx, ops_observe

        async def app(scope, receive, send):
            pass

        checks = {
            "d": {"plugin": "disk", "min_free_percent": 0},
            "m": {"plugin": "memory"},
            "t": {"plugin": "tcp", "host": "127.0.0.1", "port": 1},
            "h": {"plugin": "http", "url": "http://127.0.0.1:1/"},
        }
        wrapped = ops_observe.wrap(app, settings={"middleware": ["correlation"], "health": {"checks": checks}})

        async def go():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as c:
                return (await c.get("/health/detailed")).status_code

        assert asyncio.run(go()) == 503
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("psycopg", "redis", "psycopg_pool"))
        print(loaded)
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_discovered_checks_are_sorted_and_unique(third_party_dist: Path) -> None:
    names = [s.name for s in plugins.find(plugins.HEALTH_CHECKS)]
    assert names == sorted(set(names))
    assert {"acme", "broken", "http", "tcp", "disk", "memory"} <= set(names)
