"""The suite and each middleware, before and after a revision, measured in the same run, interleaved.

``python compare_revisions.py [--base REV] [--rounds N]`` (from ``benchmarks/``) checks out ``REV``
(default ``6aa556c``, the last commit before the one-package-per-feature layout) with
``git worktree add --detach`` into a temporary folder, then runs one worker subprocess per (tree,
round), alternating: the base tree, this tree, the base tree, ... Each worker times, in-process with
``harness.measure`` over GET /items/42 of ``bench_metrics.starlette_app()``:

* ``bare``: the plain Starlette app;
* ``whole suite``: ``ops_observe.wrap()`` with the default middleware list and the settings of
  ``bench_stack.ours()`` (JSON log to ``os.devnull``, zipkin tracing at ratio 0.1 whose exporter is
  swapped for one that drops every batch, so no network is timed);
* ``correlation``, ``logging``, ``metrics``, ``tracing``: the same settings with
  ``"middleware": [name]``.

and prints one JSON line. The parent prints a Markdown table of the median overhead over ``bare``
(µs per request) for each tree and the ratio this/base.

ops_observe is installed in editable mode, so the installed entry points (the
``ops_observe.middleware`` aliases, ``ops_observe.features``) are those of the checkout it was
installed from, while the base tree's aliases name other modules. Each worker therefore runs with
``PYTHONPATH=<site>:<tree>``, where ``<site>`` is a temporary folder holding only an
``ops_observe-<version>.dist-info`` written from that tree's ``setup.cfg``: ``importlib.metadata``
returns the first distribution of a name on ``sys.path``, and the path finder comes before the
editable install's finder. The worker checks both (where ``ops_observe`` was imported from, and
which modules the entry points name) and fails loudly otherwise. Its working directory is an empty
temporary folder, so no stray ``ops_observe.toml`` is read.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THIS_TREE = HERE.parent
DEFAULT_BASE = "6aa556c"
RATIO = 0.1
PATH = "/items/42"
MIDDLEWARE = ("correlation", "logging", "metrics", "tracing")
CONFIGS = ("whole suite", *MIDDLEWARE)
CHECKED_GROUPS = ("ops_observe.middleware", "ops_observe.features")
# Variables that could make a worker read settings or state other than the ones given here.
SCRUBBED_PREFIXES = ("OPS_OBSERVE", "OTEL_", "PROMETHEUS_MULTIPROC")


# --- the metadata of one tree ---------------------------------------------------------------------


def tree_entry_points(tree: Path) -> dict[str, dict[str, str]]:
    """``[options.entry_points]`` of the tree's ``setup.cfg``: group -> name -> object reference."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(tree / "setup.cfg", encoding="utf-8")
    groups: dict[str, dict[str, str]] = {}
    for group, value in parser.items("options.entry_points"):
        entries: dict[str, str] = {}
        for line in value.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            name, sep, ref = line.partition("=")
            if not sep:
                raise SystemExit(f"{tree}/setup.cfg: entry point line without '=' in [{group}]: {line!r}")
            entries[name.strip()] = ref.strip()
        groups[group] = entries
    return groups


def tree_version(tree: Path) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tree / "setup.cfg", encoding="utf-8")
    return parser.get("metadata", "version")


def write_site(tree: Path, site: Path) -> None:
    """A site folder holding only the ``.dist-info`` of ``ops-observe`` as this tree declares it."""
    version = tree_version(tree)
    dist_info = site / f"ops_observe-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: ops-observe\nVersion: {version}\n", encoding="utf-8"
    )
    sections = []
    for group, entries in tree_entry_points(tree).items():
        lines = [f"[{group}]", *(f"{name} = {ref}" for name, ref in entries.items())]
        sections.append("\n".join(lines) + "\n")
    (dist_info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")


# --- the worker -----------------------------------------------------------------------------------


def check_imports(tree: Path) -> dict[str, Any]:
    """Fail unless ``ops_observe`` and its entry points are those of ``tree``; returns what was seen."""
    import importlib.metadata

    import ops_observe

    where = Path(ops_observe.__file__).resolve()
    if not where.is_relative_to(tree.resolve()):
        raise SystemExit(f"worker for {tree}: ops_observe was imported from {where}, not from that tree")
    declared = tree_entry_points(tree)
    for group in CHECKED_GROUPS:
        seen = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=group)}
        wanted = declared.get(group, {})
        if seen != wanted:
            raise SystemExit(
                f"worker for {tree}: entry points of {group} are {seen}, but that tree's setup.cfg declares {wanted}"
            )
    dist = importlib.metadata.distribution("ops-observe")
    return {
        "ops_observe": str(where),
        "dist_info": str(getattr(dist, "_path", "?")),
        "middleware": sorted(declared.get("ops_observe.middleware", {}).values()),
    }


def worker(tree: Path, requests: int, inner_rounds: int) -> None:
    import logging

    seen = check_imports(tree)

    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    import ops_observe
    from ops_observe.tracing.feature import STATE_KEY

    from bench_metrics import starlette_app as make_app
    from harness import measure

    # Defined here rather than imported from bench_tracing, whose imports name this tree's modules.
    class DropExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    logging.disable(logging.CRITICAL)  # as in bench_stack.py
    common: dict[str, Any] = {
        "service_name": "bench",
        "logging": {"sink": os.devnull},
        # A real exporter is configured, then swapped for the dropping one, as in bench_stack.ours().
        "tracing": {"exporter": "zipkin", "sample_ratio": RATIO},
    }

    def wrapped(settings: dict[str, Any]) -> Any:
        app = ops_observe.wrap(make_app(), settings=settings)
        runtime = app.suite.state.get(STATE_KEY)  # the base tree installs tracing in every wrapped app
        if runtime is not None:
            runtime.queue.exporter = DropExporter()
        elif "tracing" in settings.get("middleware", ["tracing"]):
            raise SystemExit(f"worker for {tree}: no tracing runtime to swap the exporter of")
        return app

    apps: dict[str, Any] = {"bare": make_app(), "whole suite": wrapped(common)}
    for name in MIDDLEWARE:
        apps[name] = wrapped({**common, "middleware": [name]})
    start = time.perf_counter()
    results = measure(apps, path=PATH, requests=requests, rounds=inner_rounds)
    elapsed = time.perf_counter() - start
    print(json.dumps({"tree": str(tree), "seconds": round(elapsed, 2), "us": results, **seen}), flush=True)


# --- the parent -----------------------------------------------------------------------------------


def git(*args: str, cwd: Path = THIS_TREE) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def run_worker(tree: Path, site: Path, cwd: Path, requests: int, inner_rounds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(tree)])
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree)]
    command += ["--requests", str(requests), "--inner-rounds", str(inner_rounds)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"worker for {tree} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def overheads(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {name: [run["us"][name] - run["us"]["bare"] for run in runs] for name in CONFIGS}


def table(base_label: str, this_label: str, base_runs: list[dict[str, Any]], this_runs: list[dict[str, Any]]) -> str:
    base, this = overheads(base_runs), overheads(this_runs)
    bare = {
        label: statistics.median(r["us"]["bare"] for r in runs) for label, runs in (("b", base_runs), ("t", this_runs))
    }
    lines = [
        f"| configuration | base {base_label}: overhead µs (min–max) "
        f"| this {this_label}: overhead µs (min–max) | this/base |",
        "| --- | ---: | ---: | ---: |",
        f"| bare (µs/request, not overhead) | {bare['b']:.1f} | {bare['t']:.1f} | {bare['t'] / bare['b']:.2f} |",
    ]
    for name in CONFIGS:
        b, t = statistics.median(base[name]), statistics.median(this[name])
        lines.append(
            f"| {name} | {b:.1f} ({min(base[name]):.1f}–{max(base[name]):.1f}) "
            f"| {t:.1f} ({min(this[name]):.1f}–{max(this[name]):.1f}) | {t / b:.2f} |"
        )
    return "\n".join(lines)


def compare(base_rev: str, rounds: int, requests: int, inner_rounds: int) -> None:
    base_commit = git("rev-parse", "--verify", f"{base_rev}^{{commit}}")
    head_commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "ops_observe", "setup.cfg"))
    scratch = Path(tempfile.mkdtemp(prefix="ops-observe-compare-"))
    base_tree = scratch / "base"
    git("worktree", "add", "--detach", str(base_tree), base_commit)
    try:
        sites = {base_tree: scratch / "site-base", THIS_TREE: scratch / "site-this"}
        for tree, site in sites.items():
            write_site(tree, site)
        cwd = scratch / "cwd"
        cwd.mkdir()
        runs: dict[Path, list[dict[str, Any]]] = {base_tree: [], THIS_TREE: []}
        start = time.perf_counter()
        for round_ in range(1, rounds + 1):
            for tree in (base_tree, THIS_TREE):
                result = run_worker(tree, sites[tree], cwd, requests, inner_rounds)
                runs[tree].append(result)
                label = "base" if tree == base_tree else "this"
                figures = ", ".join(f"{k} {v:.1f}" for k, v in result["us"].items())
                print(f"round {round_}/{rounds} {label}: {figures} µs/request", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - start
    finally:
        git("worktree", "remove", "--force", str(base_tree))
        shutil.rmtree(scratch, ignore_errors=True)
    for tree, tree_runs in runs.items():
        seen = tree_runs[0]
        print(f"# {tree}: ops_observe from {seen['ops_observe']}, aliases {', '.join(seen['middleware'])}")
    this_label = head_commit[:7] + (" + uncommitted changes" if dirty else "")
    print(
        f"# {rounds} rounds x 2 trees, {requests} requests x {inner_rounds} inner rounds per configuration "
        f"per worker, GET {PATH}; {elapsed:.0f} s"
    )
    print()
    print(table(base_commit[:7], this_label, runs[base_tree], runs[THIS_TREE]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"base revision (default {DEFAULT_BASE})")
    parser.add_argument("--rounds", type=int, default=10, help="worker rounds per tree (default 10)")
    parser.add_argument("--requests", type=int, default=1500, help="requests per inner round (default 1500)")
    parser.add_argument("--inner-rounds", type=int, default=3, help="inner rounds per worker (default 3)")
    parser.add_argument("--worker", metavar="TREE", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.requests, args.inner_rounds)
    else:
        compare(args.base, args.rounds, args.requests, args.inner_rounds)


if __name__ == "__main__":
    main()
