"""A real Prometheus and Alertmanager on loopback for the end-to-end alert tests, and the apps they watch.

:class:`Stack` starts, each on a free 127.0.0.1 port with its files in a temporary directory:

- a :class:`Webhook`, a threaded ``http.server`` of the test collecting the JSON posts of
- an Alertmanager (``prometheus-alertmanager``, no gossip: ``--cluster.listen-address=``) that
  groups by alert name, waits and repeats little, and sends resolved alerts too, fed by
- a Prometheus scraping the app every second and evaluating the exported rule file every second.

Every process writes to a log file; :meth:`Stack.diagnostics` shows the ends of them, and every
bounded wait (:func:`poll`) puts them in its failure message. :meth:`Stack.stop` always stops
everything, within bounded waits.

:func:`exercised_demo` is the demo app with a few routes more that fill every metric of the catalog,
served by uvicorn in a subprocess (``--factory``) for the dashboard test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from services import free_port, need

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOG_TAIL = 4000  # characters of each log shown in a failure message


def poll(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25,
         diagnostics: Callable[[], str] | None = None) -> T:  # fmt: skip
    """The first truthy value ``check()`` returns within ``timeout`` seconds; else fail, saying ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except httpx.TransportError as exc:  # a server still starting
            last = exc
        if last:
            return last
        if time.monotonic() > deadline:
            shown = diagnostics() if diagnostics else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}\n{shown}")
        time.sleep(interval)


def binary(name: str) -> str:
    """The path of a Debian package's binary (``.ci/run`` installs them); skips locally, fails in CI."""
    path = shutil.which(name)
    need(path, f"{name} is not installed (apt-get install prometheus prometheus-alertmanager)")
    assert path is not None
    return path


class Process:
    """A server started in the background, its output in ``log``; :meth:`stop` within bounded waits."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:  # fmt: skip
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            list(cmd), stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """The end of what the process wrote."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-LOG_TAIL:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._out.close()

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return f"--- {self.name} ({state}), {self.log}:\n{self.output()}"


def wait_until_ready(process: Process, url: str, *, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 200; fail at once, with the output, if the process exits first."""

    def ready() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited before it was ready\n{process.describe()}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    poll(ready, timeout=timeout, what=f"{process.name} at {url}", diagnostics=process.describe)


# -- the webhook receiver -----------------------------------------------------------------------


class Webhook:
    """The Alertmanager's receiver: a threaded HTTP server on 127.0.0.1 keeping every JSON body posted."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        posts, lock = self.posts, self._lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the posts are kept, not logged."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self.thread.start()

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        """Every alert called ``name`` posted with ``status`` (``firing``, ``resolved``), oldest first."""
        with self._lock:
            posts = list(self.posts)
        return [
            alert
            for post in posts
            for alert in post.get("alerts", ())
            if alert["labels"].get("alertname") == name and alert.get("status") == status
        ]

    def describe(self) -> str:
        with self._lock:
            summary = [(a["labels"].get("alertname"), a.get("status")) for p in self.posts for a in p.get("alerts", ())]
        return f"--- webhook: {len(self.posts)} posts: {summary}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# -- Prometheus and Alertmanager ----------------------------------------------------------------


class Stack:
    """A webhook, an Alertmanager and a Prometheus scraping ``targets`` with ``rules`` loaded.

    Args:
        workdir: Where the configuration, the data and the logs go.
        targets: Scrape job name -> ``host:port`` of the app.
        rules: The exported rule file's text (YAML).
    """

    def __init__(self, workdir: Path, targets: Mapping[str, str], rules: str) -> None:
        self.workdir = workdir
        self.processes: list[Process] = []
        self.webhook: Webhook | None = None
        self.rule_file = workdir / "rules.yml"
        self.rule_file.write_text(rules)
        self.targets = dict(targets)
        self.am_port = free_port()
        self.prom_port = free_port()
        self.prometheus_url = f"http://127.0.0.1:{self.prom_port}"
        self.alertmanager_url = f"http://127.0.0.1:{self.am_port}"

    def start(self) -> Stack:
        prometheus, alertmanager = binary("prometheus"), binary("prometheus-alertmanager")
        try:
            self.webhook = Webhook()
            self._start_alertmanager(alertmanager)
            self._start_prometheus(prometheus)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_alertmanager(self, path: str) -> None:
        config = {
            "route": {
                "receiver": "test",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "test", "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}]}],
        }
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        (self.workdir / "am-data").mkdir()
        process = Process(
            "alertmanager",
            [
                path,
                f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.am_port}",
                "--cluster.listen-address=",  # no gossip: a single instance of the test's own
            ],
            self.workdir / "alertmanager.log",
        )
        self.processes.append(process)
        wait_until_ready(process, f"{self.alertmanager_url}/-/ready")

    def _start_prometheus(self, path: str) -> None:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(self.rule_file)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in self.targets.items()
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        process = Process(
            "prometheus",
            [
                path,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}",
                "--rules.alert.resend-delay=1s",  # firing alerts reach the Alertmanager again within a second
            ],
            self.workdir / "prometheus.log",
        )
        self.processes.append(process)
        wait_until_ready(process, f"{self.prometheus_url}/-/ready")

    @property
    def webhook_url(self) -> str:
        assert self.webhook is not None
        return self.webhook.url

    def add(self, process: Process) -> Process:
        """Have :meth:`stop` stop ``process`` too, and :meth:`diagnostics` show its output (the app)."""
        self.processes.append(process)
        return process

    # -- the Prometheus API ---------------------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.prometheus_url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus /api/v1/{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``expr`` gives now."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def alerts(self, name: str, state: str = "firing") -> list[dict[str, Any]]:
        """The alerts called ``name`` in ``state`` (``pending``, ``firing``) now, from ``/api/v1/alerts``."""
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name and a["state"] == state]

    def wait(self, check: Callable[[], T | None], *, what: str, timeout: float = 45.0) -> T:
        """:func:`poll` with this stack's diagnostics in the failure message."""
        return poll(check, timeout=timeout, what=what, diagnostics=self.diagnostics)

    def wait_for_samples(self, expr: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        return self.wait(lambda: self.query(expr), what=f"samples of {expr}", timeout=timeout)

    def diagnostics(self) -> str:
        """The ends of every process's output and what the webhook received, for failure messages."""
        parts = [p.describe() for p in self.processes]
        if self.webhook is not None:
            parts.append(self.webhook.describe())
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process (the last started first) and the webhook; bounded, never raises for one."""
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as exc:  # go on stopping the others
                print(f"stopping {process.name} failed: {exc!r}", file=sys.stderr)
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None


# -- the apps -----------------------------------------------------------------------------------


def serve_demo(workdir: Path, settings: Path, port: int) -> Process:
    """``ops-observe serve`` (the built-in demo) with ``settings`` on ``127.0.0.1:port``; waits until it answers."""
    process = Process(
        "demo",
        [sys.executable, "-m", "ops_observe", "serve", "--settings", str(settings), "--port", str(port)],
        workdir / "demo.log",
    )
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/health")
    except BaseException:
        process.stop()
        raise
    return process


def serve_exercised_demo(workdir: Path, settings: Path, port: int) -> Process:
    """uvicorn in a subprocess serving :func:`exercised_demo` with ``settings``; waits until it answers."""
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "stack:exercised_demo", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    # This module imports tests/services.py, so the subprocess needs tests/ on its path too.
    path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    env = {"OPS_OBSERVE_SETTINGS": str(settings), "PYTHONPATH": path}
    process = Process("exercised demo", cmd, workdir / "demo.log", env=env)
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/health")
    except BaseException:
        process.stop()
        raise
    return process


def exercised_demo() -> Any:
    """The demo app, wrapped (settings from ``$OPS_OBSERVE_SETTINGS``), with routes that fill the catalog.

    ``POST /exercise`` records every business metric through ``ops_observe.metrics``, as an app's
    own code does; ``/unauthorized`` and ``/limited`` answer 401 and 429 for the security counters.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    import ops_observe
    from ops_observe import metrics
    from ops_observe.demo import create_app

    async def exercise(request: Request) -> JSONResponse:
        metrics.record_credit_transaction(
            transaction_type="usage", user_id="u-1", organization_id="org-1", amount=5, balance=95, tier="pro",
            service="chat", model="gpt-4o-mini",
        )  # fmt: skip
        metrics.record_subscription_change(
            change_type="upgrade", from_tier="free", to_tier="pro", organization_id="org-1", active=True
        )
        metrics.subscription_tier_distribution.labels(tier="pro").set(3)
        metrics.record_db_query(operation="select", table="users", duration_seconds=0.004)
        metrics.record_db_query(operation="update", table="credits", duration_seconds=0.02, error="DeadlockDetected")
        for name, value in (("active", 2), ("idle", 3), ("max", 10), ("waiting", 0)):
            getattr(metrics, f"db_connections_{name}").labels(pool="main").set(value)
        metrics.record_payment(status="success", payment_method="card", tier="pro", amount_cents=4900)
        metrics.record_payment(status="failed", payment_method="card", tier="pro")
        metrics.user_registrations_total.labels(tier="free", source="web").inc()
        metrics.user_logins_total.labels(method="password", status="success").inc()
        metrics.user_logins_total.labels(method="password", status="failed").inc()
        metrics.organizations.labels(tier="pro").set(4)
        metrics.organization_members.labels(organization_id="org-1").set(7)
        metrics.webhook_deliveries_total.labels(event="invoice.paid", status="delivered").inc()
        metrics.webhook_deliveries_total.labels(event="invoice.paid", status="failed").inc()
        for feature in ("export", "sso", "audit", "api", "beta"):  # over the test's label cap of 3
            metrics.feature_access_total.labels(feature=feature, tier="free", result="denied").inc()
        return JSONResponse({"recorded": True})

    async def unauthorized(request: Request) -> PlainTextResponse:
        return PlainTextResponse("no", status_code=401)

    async def limited(request: Request) -> PlainTextResponse:
        return PlainTextResponse("slow down", status_code=429)

    demo = create_app()
    routes = [
        *demo.routes,
        Route("/exercise", exercise, methods=["POST"]),
        Route("/unauthorized", unauthorized),
        Route("/limited", limited),
    ]
    return ops_observe.wrap(Starlette(routes=routes))
