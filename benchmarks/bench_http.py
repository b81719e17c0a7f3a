"""The whole stack over real HTTP: uvicorn on loopback, one worker, load from ``wrk``.

The in-process benchmarks time our code alone; this one measures what a user sees on a server:
requests per second of one uvicorn worker serving the same Starlette app (GET /items/42) as

* ``bare``: the app alone;
* ``ours``: ``ops_observe.wrap()`` with the default stack, tracing at ratio 0.1;
* ``ours-1.0``: the same, every request traced;
* ``peers``: asgi-correlation-id, opentelemetry-instrumentation-asgi (ratio 0.1), a structlog JSON
  access log and starlette-exporter, stacked as in ``bench_stack.py``;
* ``floor``: ``floor.FloorMiddleware`` (one id, one counter, one JSON line).

Both tracers export to an exporter that drops the spans; every access log (ours, the peers', the
floor's) is on and writes to ``os.devnull``; uvicorn's own access log is off for all. Each app is
served twice: by uvicorn with uvloop + httptools (what ``uvicorn[standard]`` runs) and with the
asyncio loop + h11 (plain ``pip install uvicorn``). Each server runs in its own process, pinned to
one core with ``taskset`` and ``wrk -t1 -c32`` to the other, when the machine has two.

The servers of one configuration are all started first, warmed up, then loaded in interleaved
rounds (bare, ours, ..., floor, bare, ...), so that noise from a shared machine spreads over every
app alike. The table gives the median requests/s with its range over the rounds, and the ratios to
bare computed within each round (median and range).

Run: ``cd benchmarks && python bench_http.py`` (``--rounds 5 --seconds 5`` by default; about
five minutes). ``python bench_http.py --profile ours --seconds 30`` samples one server under the
same load with py-spy (``pip install py-spy``) and prints where its CPU time goes;
``python bench_http.py --serve ours --port 8000`` serves one app until killed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
PATH = "/items/42"
APPS = {
    "bare": "bare Starlette",
    "ours": "ops_observe, default stack (tracing 0.1)",
    "ours-1.0": "ops_observe, tracing 1.0",
    "peers": "the peers combined (tracing 0.1)",
    "floor": "floor (id, counter, JSON line)",
}
"""The apps, by the name ``--apps`` and ``--serve`` take, with the label of their row."""
SERVERS = {"uvloop + httptools": ("uvloop", "httptools"), "asyncio + h11": ("asyncio", "h11")}
REQUESTS_PER_SEC = re.compile(r"Requests/sec:\s+([0-9.]+)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")
SOCKET_ERRORS = re.compile(r"Socket errors:(.*)")


def build(name: str, devnull: IO[str]) -> Any:
    """The ASGI app called ``name`` (one of :data:`APPS`), logging to ``devnull``; imports happen here."""
    from bench_metrics import starlette_app
    from bench_stack import peers
    from floor import FloorMiddleware, floor_metrics

    if name == "bare":
        return starlette_app()
    if name == "ours":
        return ours(0.1)
    if name == "ours-1.0":
        return ours(1.0)
    if name == "peers":
        return peers(devnull)
    if name == "floor":
        return FloorMiddleware(starlette_app(), counter=floor_metrics()[0], sink=devnull)
    raise ValueError(f"unknown app {name!r}: expected one of {', '.join(APPS)}")


def ours(ratio: float) -> Any:
    """The default stack at ``ratio``, access log to ``os.devnull``, spans to an exporter that drops them."""
    import ops_observe
    from ops_observe.tracing.feature import STATE_KEY

    from bench_metrics import starlette_app
    from bench_tracing import DropExporter

    settings = {
        "service_name": "bench",
        "logging": {"sink": os.devnull},
        "tracing": {"exporter": "zipkin", "sample_ratio": ratio},
    }
    app = ops_observe.wrap(starlette_app(), settings=settings)
    app.suite.state[STATE_KEY].queue.exporter = DropExporter()
    return app


def serve(name: str, port: int, loop: str, http: str) -> None:
    """Serve the app ``name`` on 127.0.0.1:``port`` with one uvicorn worker until killed."""
    import uvicorn

    logging.disable(logging.CRITICAL)  # library log lines are not what is measured
    with open(os.devnull, "w") as devnull:
        app = build(name, devnull)
        uvicorn.run(app, host="127.0.0.1", port=port, loop=loop, http=http, access_log=False, log_level="warning")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinning() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes putting the servers on one core and ``wrk`` on another, when there are two."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if shutil.which("taskset") is None or len(cores) < 2:
        return [], []
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])]


@dataclass
class Server:
    """One uvicorn process serving one app on one port."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"


def start(name: str, loop: str, http: str, prefix: Sequence[str]) -> Server:
    """Start a server process and wait until it answers 200 on :data:`PATH`."""
    port = free_port()
    log = tempfile.TemporaryFile()
    command = [*prefix, sys.executable, str(Path(__file__).resolve()), "--serve", name, "--port", str(port)]
    command += ["--loop", loop, "--http", http]
    process = subprocess.Popen(command, cwd=HERE, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            output = log.read().decode(errors="replace")
            stop(server)
            raise RuntimeError(f"server {name!r} did not come up:\n{output}")
        time.sleep(0.1)


def stop(server: Server) -> None:
    """Stop the server process (SIGTERM, then SIGKILL) and close its log."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    server.log.close()


@contextlib.contextmanager
def running(names: Sequence[str], loop: str, http: str, prefix: Sequence[str]) -> Iterator[list[Server]]:
    """All the servers of one configuration, up at once, stopped on the way out."""
    servers: list[Server] = []
    try:
        for name in names:
            servers.append(start(name, loop, http, prefix))
        yield servers
    finally:
        for server in servers:
            stop(server)


def load(url: str, seconds: int, connections: int, prefix: Sequence[str]) -> float:
    """Requests/s that ``wrk`` (one thread, no Lua) gets from ``url``; non-2xx or socket errors raise."""
    command = [*prefix, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = REQUESTS_PER_SEC.search(output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    bad = NON_2XX.search(output)
    errors = SOCKET_ERRORS.search(output)
    if bad or errors:
        raise RuntimeError(f"wrk saw errors against {url}:\n{output}")
    return float(rate.group(1))


def measure(
    names: Sequence[str], loop: str, http: str, *, rounds: int, seconds: int, connections: int, warmup: int
) -> dict[str, list[float]]:
    """Requests/s of each app in each round, the apps loaded one after another within a round."""
    server_prefix, wrk_prefix = pinning()
    samples: dict[str, list[float]] = {name: [] for name in names}
    with running(names, loop, http, server_prefix) as servers:
        for server in servers:
            load(server.url, warmup, connections, wrk_prefix)
        for number in range(rounds):
            for server in servers:
                samples[server.name].append(load(server.url, seconds, connections, wrk_prefix))
            print(f"  {loop} + {http}, round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return samples


COMPONENTS = (
    ("ops_observe", "/ops_observe/"),
    ("opentelemetry", "/opentelemetry/"),
    ("prometheus_client", "/prometheus_client/"),
    ("starlette", "/starlette/"),
    ("uvicorn", "/uvicorn/"),
    ("uvicorn", "/h11/"),
    ("uvicorn", "/httptools/"),
    ("the benchmark's peers and app", "/benchmarks/"),
    ("peers' libraries", "/asgi_correlation_id/"),
    ("peers' libraries", "/starlette_exporter/"),
    ("peers' libraries", "/structlog/"),
)
"""Which part of the stack a sampled frame's file belongs to (h11 and httptools count as uvicorn's)."""
OBSERVING = ("ops_observe", "opentelemetry", "prometheus_client", "peers' libraries")
"""The components a request pays for only because it is observed (ours, or the peers')."""


def profile(name: str, loop: str, http: str, *, seconds: int, connections: int, top: int = 20) -> str:
    """Sample one server with py-spy while ``wrk`` loads it; a Markdown summary of its self time."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    server_prefix, wrk_prefix = pinning()
    with running([name], loop, http, server_prefix) as (server,), tempfile.TemporaryDirectory() as tmp:
        load(server.url, 3, connections, wrk_prefix)
        command = [*wrk_prefix, "wrk", "-t1", f"-c{connections}", f"-d{seconds + 4}s", server.url]
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        raw = Path(tmp) / "profile.txt"
        record = [py_spy, "record", "--pid", str(server.process.pid), "--duration", str(seconds), "--rate", "250"]
        record += ["--format", "raw", "--full-filenames", "--gil", "--output", str(raw)]
        subprocess.run([*wrk_prefix, *record], check=True, capture_output=True, timeout=seconds + 60)
        output, _ = wrk.communicate(timeout=60)
        rate = REQUESTS_PER_SEC.search(output)
        title = f"{APPS.get(name, name)}, {loop} + {http}"
        return summarize(raw.read_text(), title, rate.group(1) if rate else "?", top)


def summarize(raw: str, title: str, rate: str, top: int) -> str:
    """Self time by component and by function, from py-spy's raw (collapsed stacks) output."""
    by_function: collections.Counter[str] = collections.Counter()
    observing_functions: collections.Counter[str] = collections.Counter()
    observing_files: collections.Counter[str] = collections.Counter()
    by_component: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        leaf = stack.rsplit(";", 1)[-1]
        function, _, where = leaf.partition(" (")
        filename = where.rsplit(":", 1)[0]
        component = next((label for label, part in COMPONENTS if part in filename), "Python and the event loop")
        by_component[component] += samples
        short = re.sub(r".*/(site-packages|lib/python3\.\d+|main)/", "", filename)
        label = f"`{function}` ({short})" if function else "(no Python frame)"
        by_function[label] += samples
        if component in OBSERVING:
            observing_functions[label] += samples
            observing_files[short] += samples
    lines = [f"### Where the server's CPU time goes: {title} ({rate} req/s while sampled, {total:,} samples)", ""]
    lines += ["| component (self time) | % |", "| --- | ---: |"]
    lines += [f"| {label} | {100 * n / total:.1f} |" for label, n in by_component.most_common()]
    lines += ["", "| function (self time) | % |", "| --- | ---: |"]
    lines += [f"| {label} | {100 * n / total:.1f} |" for label, n in by_function.most_common(top)]
    observing = sum(by_component[label] for label in OBSERVING)
    lines += ["", f"| observability libraries' frames: {100 * observing / total:.1f} % in all | % |", "| --- | ---: |"]
    lines += [f"| {label} | {100 * n / total:.1f} |" for label, n in observing_functions.most_common(top)]
    lines += ["", "| observability libraries, by file (self time) | % |", "| --- | ---: |"]
    lines += [f"| {label} | {100 * n / total:.1f} |" for label, n in observing_files.most_common(top)]
    return "\n".join(lines)


def spread(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    """``median (min–max)`` of ``values``."""
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def ratios(over: Sequence[float], under: Sequence[float]) -> list[float]:
    """Per-round ratios: each round's figure over the same round's, so that drift between rounds cancels."""
    return [a / b for a, b in zip(over, under, strict=True)]


def report(results: dict[str, dict[str, list[float]]]) -> str:
    """The Markdown table: per configuration, each app's req/s and its ratio to bare, then ours/peers."""

    def rate(value: float) -> str:
        return f"{value:,.0f}"

    def times(value: float) -> str:
        return f"{value:.2f}"

    configs = list(results)
    header = "| app |" + "".join(f" {c}: req/s, median (min–max) | × bare |" for c in configs)
    lines = [header, "| --- |" + " ---: | ---: |" * len(configs)]
    names = list(next(iter(results.values())))
    for name in names:
        cells = []
        for config in configs:
            samples = results[config]
            ratio = "" if name == "bare" else spread(ratios(samples[name], samples["bare"]), times)
            cells.append(f" {spread(samples[name], rate)} | {ratio} |")
        lines.append(f"| {APPS.get(name, name)} |" + "".join(cells))
    if "ours" in names and "peers" in names:
        cells = [f" | {spread(ratios(results[c]['ours'], results[c]['peers']), times)} |" for c in configs]
        lines.append("| ops_observe / the peers (× peers) |" + "".join(cells))
    return "\n".join(lines)


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; ``--serve`` turns the process into one server (used by the harness itself)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration of each measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk seconds per server before the rounds")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated, from: " + ", ".join(APPS))
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated, from: " + ", ".join(SERVERS))
    parser.add_argument("--serve", metavar="APP", help="serve one app until killed (no load, no table)")
    parser.add_argument("--profile", metavar="APP", help="sample one app's server under load with py-spy")
    parser.add_argument("--port", type=int, default=8000, help="with --serve")
    parser.add_argument("--loop", default="uvloop", help="with --serve: uvicorn's --loop")
    parser.add_argument("--http", default="httptools", help="with --serve: uvicorn's --http")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    options = arguments(argv)
    if options.serve:
        serve(options.serve, options.port, options.loop, options.http)
        return
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): the HTTP benchmark did not run")
        return
    if options.profile:
        for config in options.servers.split(","):
            loop, http = SERVERS[config.strip()]
            print(profile(options.profile, loop, http, seconds=options.seconds, connections=options.connections))
            print()
        return
    names = [name.strip() for name in options.apps.split(",")]
    if "bare" not in names:
        names.insert(0, "bare")
    results: dict[str, dict[str, list[float]]] = {}
    for config in options.servers.split(","):
        loop, http = SERVERS[config.strip()]
        results[config.strip()] = measure(
            names,
            loop,
            http,
            rounds=options.rounds,
            seconds=options.seconds,
            connections=options.connections,
            warmup=options.warmup,
        )
    server_prefix, _ = pinning()
    pinned = "server and wrk pinned to separate cores" if server_prefix else "not pinned (no taskset or one core)"
    print(f"### GET {PATH} over HTTP: one uvicorn worker, wrk -t1 -c{options.connections}, {pinned}")
    print()
    print(f"{options.rounds} interleaved rounds of {options.seconds} s; ratios are per round, median (min–max).")
    print()
    print(report(results))


if __name__ == "__main__":
    main()
