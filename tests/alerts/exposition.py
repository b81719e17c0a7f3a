"""The series a real wrapped app exposes: the source of every input series of the alert unit tests.

The promtool cases never spell a metric or label name by hand: they ask :func:`series` for one
the app showed at ``/metrics`` and get its selector as exposed, so renaming a metric or a label in
the catalog breaks the case that reads it. The app is the demo, wrapped with the suite (metrics,
tracing, health checks named like the alerts expect), driven once per test session through every
kind of request and every business helper of ``docs/metrics.md``. The series only a multi-worker
deployment has (``<ns>_metrics_multiprocess_*``) come from the same app run once in
multiprocess mode, in a subprocess (that mode is process-wide).
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import ops_observe
from ops_observe.app import ObservedApp
from ops_observe.demo import create_app

from services import free_port

NS = "ops_center"
"""The demo's metric namespace (service_name ``ops-center``)."""

HEALTH_CHECKS = ("db", "cache", "keycloak", "litellm")
"""The check names the infrastructure alerts read by default."""

TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod"})
"""Labels Prometheus (or its service discovery) attaches at scrape time, never the app."""

PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
"""Series Prometheus itself writes for each target: no app exposes them."""


@dataclass(frozen=True)
class Series:
    """One exposed series: its name and labels; ``str()`` is its selector for promtool."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in self.labels.items())
        return f"{self.name}{{{inner}}}" if inner else self.name

    def with_(self, **labels: str) -> Series:
        """The same series with other values for labels the app exposes (a new label is an error)."""
        unknown = sorted(set(labels) - set(self.labels))
        if unknown:
            raise KeyError(f"{self.name} has no label {', '.join(unknown)}; it has {', '.join(self.labels)}")
        return Series(self.name, {**self.labels, **labels})

    def target(self, **labels: str) -> Series:
        """The series as scraped: with the labels Prometheus attaches (``job``, ``instance``...)."""
        if not set(labels) <= TARGET_LABELS:
            raise KeyError(f"not a target label: {', '.join(sorted(set(labels) - TARGET_LABELS))}")
        return Series(self.name, {**self.labels, **labels})

    def pick(self, *names: str) -> dict[str, str]:
        """The values of ``names`` (the labels that survive a ``sum by (...)``)."""
        return {name: self.labels[name] for name in names}


def series(name: str, **labels: str) -> Series:
    """The first series the app exposes as ``<ns>_<name>`` (or ``name``, e.g. ``process_*``) whose labels
    include ``labels``; a KeyError lists what is exposed instead."""
    return _find(exposition(), name, labels)


def worker_series(name: str, **labels: str) -> Series:
    """:func:`series`, as one worker of a multiprocess deployment exposes it (``process_*`` with ``pid``)."""
    return _find(multiprocess_exposition(), name, labels)


def buckets(histogram: str, **labels: str) -> list[Series]:
    """Every ``_bucket`` series of one exposed series of ``histogram`` (``+Inf`` included), by bound."""
    first = series(f"{histogram}_bucket", **labels)

    def without_le(labels: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in labels.items() if k != "le"}

    found = [Series(first.name, s) for s in exposition()[first.name] if without_le(s) == without_le(first.labels)]
    return sorted(found, key=lambda s: float(s.labels["le"]))


def _find(exposed: Mapping[str, tuple[dict[str, str], ...]], name: str, labels: Mapping[str, str]) -> Series:
    full = f"{NS}_{name}" if f"{NS}_{name}" in exposed else name
    if full not in exposed:
        close = difflib.get_close_matches(f"{NS}_{name}", exposed, n=3, cutoff=0.6)
        raise KeyError(f"the app exposes no {NS}_{name} (nor {name}); close: {', '.join(close) or 'none'}")
    for found in exposed[full]:
        if labels.items() <= found.items():
            return Series(full, dict(found))
    shown = "\n  ".join(str(Series(full, found)) for found in exposed[full])
    raise KeyError(f"no exposed {full} has the labels {dict(labels)}; exposed:\n  {shown}")


def scrape_series(name: str) -> Series:
    """A series Prometheus writes per target (``up``, ``scrape_duration_seconds``), labelled by the target."""
    if name not in PROMETHEUS_SERIES:
        raise KeyError(f"{name} is not a series Prometheus writes; known: {', '.join(sorted(PROMETHEUS_SERIES))}")
    return Series(name)


@functools.cache
def exposition() -> dict[str, tuple[dict[str, str], ...]]:
    """Every sample name the wrapped demo exposes, with the label sets it shows (built once a session),
    and the names only its multiprocess deployment has."""
    found = _samples(asyncio.run(_drive(_wrapped_demo())))
    return {**{k: v for k, v in multiprocess_exposition().items() if k not in found}, **found}


@functools.cache
def multiprocess_exposition() -> dict[str, tuple[dict[str, str], ...]]:
    """What the same app exposes in multiprocess mode (run once, in a subprocess)."""
    return _samples(_multiprocess_scrape())


def _samples(text: str) -> dict[str, tuple[dict[str, str], ...]]:
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    return {name: tuple(label_sets) for name, label_sets in found.items()}


def _multiprocess_scrape() -> str:
    """The demo's exposition in multiprocess mode (``python exposition.py DIR OUT``, in a subprocess)."""
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="ops-observe-mp-") as base:
        directory, out = Path(base, "multiprocess"), Path(base, "metrics.txt")
        directory.mkdir()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent), *sys.path])}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        command = [sys.executable, str(here / "exposition.py"), str(directory), str(out)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"the multiprocess scrape failed:\n{result.stderr}")
        return out.read_text()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# -- the app and its traffic ---------------------------------------------------------------------


async def _admin(request: Request) -> PlainTextResponse:
    """401 without credentials or with a wrong token, 403 with a user's token: the auth counters."""
    token = request.headers.get("authorization", "")
    if token == "Bearer user":
        return PlainTextResponse("forbidden", status_code=403)
    return PlainTextResponse("unauthorized", status_code=401)


async def _limited(request: Request) -> PlainTextResponse:
    return PlainTextResponse("slow down", status_code=429)


def service_settings(alerts: Mapping[str, Any] | None = None, multiprocess_dir: str = "") -> dict[str, Any]:
    """The settings of the wrapped demo, with an ``[ops_observe.alerts]`` section: the rules are
    exported for the very service whose series the cases read (``multiprocess_dir``: its
    multi-worker deployment)."""
    closed = _closed_port()  # nothing listens there: every check fails fast, and reports its status
    checks: dict[str, dict[str, Any]] = {
        "db": {"plugin": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{closed}/postgres"},
        "cache": {"plugin": "redis", "url": f"redis://127.0.0.1:{closed}/0"},
        "keycloak": {"plugin": "tcp", "host": "127.0.0.1", "port": closed},
        "litellm": {"plugin": "tcp", "host": "127.0.0.1", "port": closed, "critical": False},
    }
    return {
        "service_name": "ops-center",
        "middleware": ["correlation", "tracing", "metrics"],
        "tracing": {"exporter": "none"},
        # A cap of 2 organisations per label, so that the overflow counter shows its labels too.
        "metrics": {
            "label_caps": {"organization_members": 2},
            **({"multiprocess_dir": multiprocess_dir} if multiprocess_dir else {}),
        },
        "health": {"timeout": 1.0, "checks": checks},
        "alerts": dict(alerts or {}),
    }


@functools.cache
def _closed_port() -> int:
    return free_port()


def _wrapped_demo(multiprocess_dir: str = "") -> ObservedApp:
    """The demo plus two routes for the security counters, wrapped like a production service."""
    app = create_app()
    app.router.routes.extend([Route("/admin", _admin), Route("/limited", _limited)])
    return ops_observe.wrap(app, settings=service_settings(multiprocess_dir=multiprocess_dir))


_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}], "user_id": "u-1"}
_TRAFFIC: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("GET", "/items/1", {}),
    ("GET", "/items/99", {}),  # 404
    ("GET", "/boom", {}),  # 500, and http_errors_total
    ("POST", "/credits/purchase", {"json": {"amount": 10, "user_id": "u-1"}}),
    ("POST", "/llm/chat", {"json": _CHAT}),
    ("GET", "/slow?seconds=0.01", {}),
    ("GET", "/admin", {}),  # 401 missing_credentials
    ("GET", "/admin", {"headers": {"Authorization": "Bearer wrong"}}),  # 401 invalid_credentials
    ("GET", "/admin", {"headers": {"Authorization": "Bearer user"}}),  # 403 forbidden
    ("GET", "/limited", {"headers": {"X-API-Key": "key-1"}}),  # 429, and api_key_usage_total
    ("GET", "/health/ready", {}),  # runs every check once: health_check_status and _duration_seconds
)


async def _drive(app: ObservedApp) -> str:
    """Send the traffic, a request the client abandons (499), record the business metrics, scrape."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        for method, path, options in _TRAFFIC:
            await client.request(method, path, **options)
        abandoned = asyncio.create_task(client.get("/slow?seconds=5"))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        await asyncio.gather(abandoned, return_exceptions=True)
        _record_business(app.suite.state["metrics"])
        response = await client.get("/metrics")
    response.raise_for_status()
    return response.text


def _record_business(m: Any) -> None:
    """Every business metric, through the catalog's helpers and metrics (docs/metrics.md)."""
    user = {"user_id": "u-1", "organization_id": "org-1"}
    for status in ("success", "error"):
        m.record_llm_usage(model="gpt-4o-mini", provider="openai", **user, prompt_tokens=120, completion_tokens=80,
                           duration_seconds=1.3, cost_credits=0.4, status=status)  # fmt: skip
    m.record_credit_transaction(transaction_type="usage", **user, amount=5, balance=95, tier="pro", service="chat",
                                model="gpt-4o-mini")  # fmt: skip
    for status in ("succeeded", "failed"):
        m.record_payment(status=status, payment_method="card", tier="pro", amount_cents=4900)
    m.record_subscription_change(change_type="cancellation", from_tier="pro", to_tier="free",
                                 organization_id="org-2", active=False)  # fmt: skip
    m.record_db_query(operation="select", table="users", duration_seconds=0.004, error="OperationalError")
    for gauge, value in (("active", 8), ("idle", 2), ("max", 10), ("waiting", 1)):
        getattr(m, f"db_connections_{gauge}").labels(pool="main").set(value)
    m.subscription_tier_distribution.labels(tier="pro").set(3)
    m.organizations.labels(tier="pro").set(12)
    for org in ("org-1", "org-2", "org-3"):  # the third one overflows the cap of 2
        m.organization_members.labels(organization_id=org).set(5)
    m.user_registrations_total.labels(tier="free", source="organic").inc()
    for status in ("success", "failed"):
        m.user_logins_total.labels(method="password", status=status).inc()
        m.webhook_deliveries_total.labels(event="payment.succeeded", status=status).inc()
    m.feature_access_total.labels(feature="export", tier="free", result="denied").inc()


if __name__ == "__main__":
    # The multiprocess scrape: this process is the one "worker" of a multiprocess run in argv[1].
    Path(sys.argv[2]).write_text(asyncio.run(_drive(_wrapped_demo(multiprocess_dir=sys.argv[1]))))
