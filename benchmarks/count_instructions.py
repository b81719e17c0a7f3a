"""Instructions per request of the suite and of each middleware, for two revisions, counted by callgrind.

``python count_instructions.py [--base REV] [--this REV] [--only CONFIG ...] [--requests N] [--jobs J]``
(from ``benchmarks/``) checks both revisions out with ``git worktree add --detach`` (``--this .``:
the working tree as it is, uncommitted changes included) and, for each tree
and each configuration of :mod:`compare_revisions` (``bare``, ``whole suite``, ``correlation``,
``logging``, ``metrics``, ``tracing``), runs one worker under ``valgrind --tool=callgrind`` twice:
once serving 0 requests and once serving ``N`` (after the same 200 warm-up requests). The
difference of the two totals, divided by ``N``, is the instructions one request costs, and the
table shows each configuration's overhead over ``bare``.

Why instructions and not time: a count does not depend on what else the machine is doing (the
same binary, inputs and environment give the same total), so two revisions can be compared to a
fraction of a per cent on a busy two-core machine where wall-clock medians spread by ±50 %. It
does not see what a count cannot (cache misses, a system call's own cost), so it complements the
timed benchmarks rather than replacing them.

Each worker is deterministic: ``PYTHONHASHSEED=0``, ``random.seed(0)`` (OpenTelemetry's trace
ids, hence which requests the 0.1 ratio samples), and the same request each time. Trees are made
importable as in :mod:`compare_revisions` (a site folder with the tree's own ``.dist-info``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from compare_revisions import CONFIGS, DEFAULT_BASE, PATH, RATIO, SCRUBBED_PREFIXES, check_imports, git, write_site

HERE = Path(__file__).resolve().parent
WARMUP = 200
_TOTAL = re.compile(r"Collected : (\d+)")


def worker(tree: Path, config: str, requests: int) -> None:
    """Serve ``WARMUP + requests`` requests of one configuration, in this process (under callgrind)."""
    import asyncio
    import logging
    import random
    from collections.abc import Sequence

    check_imports(tree)
    random.seed(0)

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    import ops_observe
    from ops_observe.tracing.feature import STATE_KEY

    from bench_metrics import starlette_app as make_app
    from harness import _one_request

    class DropExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    logging.disable(logging.CRITICAL)
    settings: dict[str, Any] = {
        "service_name": "bench",
        "logging": {"sink": os.devnull},
        "tracing": {"exporter": "zipkin", "sample_ratio": RATIO},
    }
    if config == "bare":
        app: Any = make_app()
    else:
        if config != "whole suite":
            settings["middleware"] = [config]
        app = ops_observe.wrap(make_app(), settings=settings)
        runtime = app.suite.state.get(STATE_KEY)
        if runtime is not None:
            runtime.queue.exporter = DropExporter()

    async def serve() -> None:
        for _ in range(WARMUP + requests):
            await _one_request(app, PATH, ())

    asyncio.run(serve())


def count(tree: Path, site: Path, cwd: Path, config: str, requests: int) -> int:
    """The instructions callgrind counted for one worker run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(tree), str(HERE)])
    env["PYTHONHASHSEED"] = "0"
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [str(Path(__file__).resolve()), "--worker", str(tree), "--config", config, "--requests", str(requests)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    found = _TOTAL.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"callgrind worker for {tree} {config!r} failed (exit {done.returncode})")
    return int(found.group(1))


def per_request(
    tree: Path, site: Path, cwd: Path, requests: int, jobs: int, configs: tuple[str, ...] = CONFIGS
) -> dict[str, float]:
    """Instructions per request of each of ``configs`` (and ``bare``) in ``tree``."""
    runs = [(config, n) for config in configs + ("bare",) for n in (0, requests)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        totals = dict(zip(runs, pool.map(lambda run: count(tree, site, cwd, *run), runs), strict=True))
    return {config: (totals[config, requests] - totals[config, 0]) / requests for config in ("bare", *configs)}


def table(
    labels: tuple[str, str], counts: tuple[dict[str, float], dict[str, float]], configs: tuple[str, ...] = CONFIGS
) -> str:
    base, this = counts
    lines = [
        f"| configuration | base {labels[0]}: instructions | this {labels[1]}: instructions | this/base |",
        "| --- | ---: | ---: | ---: |",
        f"| bare (per request, not overhead) | {base['bare']:,.0f} | {this['bare']:,.0f} "
        f"| {this['bare'] / base['bare']:.3f} |",
    ]
    for name in configs:
        b, t = base[name] - base["bare"], this[name] - this["bare"]
        lines.append(f"| {name} | {b:,.0f} | {t:,.0f} | {t / b:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"base revision (default {DEFAULT_BASE})")
    parser.add_argument(
        "--this", default="HEAD", help="the revision compared with it (default HEAD; '.': the working tree as it is)"
    )
    parser.add_argument("--only", nargs="+", choices=CONFIGS, help="these configurations only (and bare)")
    parser.add_argument("--requests", type=int, default=2000, help="requests counted per run (default 2000)")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at once (default 2)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.config, args.requests)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    configs = tuple(args.only or CONFIGS)
    scratch = Path(tempfile.mkdtemp(prefix="ops-observe-count-"))
    working = args.this == "."
    revisions = (args.base, "HEAD" if working else args.this)
    commits = [git("rev-parse", "--verify", f"{rev}^{{commit}}") for rev in revisions]
    trees = [scratch / "base", HERE.parent if working else scratch / "this"]
    labels = (commits[0][:7], f"{commits[1][:7]}+changes" if working else commits[1][:7])
    try:
        for tree, commit in zip(trees, commits, strict=True):
            if tree.is_relative_to(scratch):
                git("worktree", "add", "--detach", str(tree), commit)
        cwd = scratch / "cwd"
        cwd.mkdir()
        counts = []
        for tree in trees:
            site = scratch / f"site-{tree.name}"
            write_site(tree, site)
            counts.append(per_request(tree, site, cwd, args.requests, args.jobs, configs))
    finally:
        for tree in trees:
            if tree.is_relative_to(scratch) and tree.exists():
                git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"# callgrind instructions per request, GET {PATH}, {args.requests} requests after {WARMUP} warm-up")
    print()
    print(table(labels, (counts[0], counts[1]), configs))


if __name__ == "__main__":
    main()
