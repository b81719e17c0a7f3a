"""The suite and each middleware, before and after a revision, measured in the same run, interleaved.

``python compare_revisions.py [--base REV] [--rounds N] [--together] [--only CONFIG...]`` (from ``benchmarks/``) checks
out ``REV`` (default ``6aa556c``, the last commit before the one-package-per-feature layout) with
``git worktree add --detach`` into a temporary folder, then runs worker subprocesses, alternating
the trees: the base tree, this tree, the base tree, ... By default each worker wraps one app, as a
deployed process does (and as ``count_instructions.py`` counts): one worker per (round,
configuration, tree), timing the bare app and that configuration. With ``--together`` one worker
per (round, tree) wraps the apps of every configuration at once; this tree then serves each
request as one of several wrapped apps alive, which sets a context variable per request
(``ops_observe.current``: two wrapped apps stay apart) where the base's "last wrapped app wins"
did not. Each worker times, in-process with ``harness.measure`` over GET /items/42 of
``bench_metrics.starlette_app()``:

* ``bare``: the plain Starlette app;
* ``whole suite``: ``ops_observe.wrap()`` with the default middleware list and the settings of
  ``bench_stack.ours()`` (JSON log to ``os.devnull``, zipkin tracing at ratio 0.1 whose exporter is
  swapped for one that drops every batch, so no network is timed);
* ``correlation``, ``logging``, ``metrics``, ``tracing``: the same settings with
  ``"middleware": [name]``.

and prints one JSON line. The parent prints a Markdown table of the median overhead over ``bare``
(µs per request, each worker's configuration minus its own bare) for each tree, the ratio
this/base, and the rounds paired: the median of this minus base over the rounds, and in how many
rounds this tree was faster (a round's two workers run one after the other, so drift cancels).

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


def worker(tree: Path, requests: int, inner_rounds: int, configs: tuple[str, ...] = CONFIGS) -> None:
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

    apps: dict[str, Any] = {"bare": make_app()}
    for name in configs:
        apps[name] = wrapped(common if name == "whole suite" else {**common, "middleware": [name]})
    start = time.perf_counter()
    results = measure(apps, path=PATH, requests=requests, rounds=inner_rounds)
    elapsed = time.perf_counter() - start
    print(json.dumps({"tree": str(tree), "seconds": round(elapsed, 2), "us": results, **seen}), flush=True)


# --- the parent -----------------------------------------------------------------------------------


def git(*args: str, cwd: Path = THIS_TREE) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def run_worker(
    tree: Path, site: Path, cwd: Path, requests: int, inner_rounds: int, configs: tuple[str, ...]
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(tree)])
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree)]
    command += ["--requests", str(requests), "--inner-rounds", str(inner_rounds), "--configs", *configs]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"worker for {tree} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Figures:
    """One tree's timings: the bare app's µs per request and each configuration's overhead, per worker."""

    def __init__(self) -> None:
        self.bare: list[float] = []
        self.overhead: dict[str, list[float]] = {name: [] for name in CONFIGS}

    def add(self, result: dict[str, Any]) -> None:
        us = result["us"]
        self.bare.append(us["bare"])
        for name in CONFIGS:
            if name in us:
                self.overhead[name].append(us[name] - us["bare"])


def table(base_label: str, this_label: str, base: Figures, this: Figures) -> str:
    """The Markdown table: each tree's median overhead (min–max), their ratio, and the rounds paired.

    The ratio of two medians of a few µs moves by several per cent between runs on a busy machine;
    the paired columns compare each round's two workers (run one after the other), which cancels
    the drift between rounds: the median of this minus base, and in how many rounds this was faster.
    """
    b_bare, t_bare = statistics.median(base.bare), statistics.median(this.bare)
    lines = [
        f"| configuration | base {base_label}: overhead µs (min–max) "
        f"| this {this_label}: overhead µs (min–max) | this/base | paired: this − base, µs | rounds this faster |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| bare (µs/request, not overhead) | {b_bare:.1f} | {t_bare:.1f} | {t_bare / b_bare:.2f} | | |",
    ]
    for name in CONFIGS:
        b, t = base.overhead[name], this.overhead[name]
        if not b or not t:
            continue
        paired = [after - before for before, after in zip(b, t, strict=True)]
        faster = sum(difference < 0 for difference in paired)
        lines.append(
            f"| {name} | {statistics.median(b):.1f} ({min(b):.1f}–{max(b):.1f}) "
            f"| {statistics.median(t):.1f} ({min(t):.1f}–{max(t):.1f}) "
            f"| {statistics.median(t) / statistics.median(b):.2f} "
            f"| {statistics.median(paired):+.2f} | {faster}/{len(paired)} |"
        )
    return "\n".join(lines)


def compare(
    base_rev: str,
    rounds: int,
    requests: int,
    inner_rounds: int,
    together: bool = False,
    only: tuple[str, ...] = CONFIGS,
) -> None:
    base_commit = git("rev-parse", "--verify", f"{base_rev}^{{commit}}")
    head_commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "ops_observe", "setup.cfg"))
    scratch = Path(tempfile.mkdtemp(prefix="ops-observe-compare-"))
    base_tree = scratch / "base"
    git("worktree", "add", "--detach", str(base_tree), base_commit)
    # Each worker's configurations: all at once (--together), or one wrapped app per worker.
    batches = [only] if together else [(name,) for name in only]
    try:
        sites = {base_tree: scratch / "site-base", THIS_TREE: scratch / "site-this"}
        for tree, site in sites.items():
            write_site(tree, site)
        cwd = scratch / "cwd"
        cwd.mkdir()
        figures = {base_tree: Figures(), THIS_TREE: Figures()}
        seen: dict[Path, dict[str, Any]] = {}
        start = time.perf_counter()
        for round_ in range(1, rounds + 1):
            for configs in batches:
                for tree in (base_tree, THIS_TREE):
                    result = run_worker(tree, sites[tree], cwd, requests, inner_rounds, configs)
                    figures[tree].add(result)
                    seen.setdefault(tree, result)
                    label = "base" if tree == base_tree else "this"
                    shown = ", ".join(f"{k} {v:.1f}" for k, v in result["us"].items())
                    print(f"round {round_}/{rounds} {label}: {shown} µs/request", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - start
    finally:
        git("worktree", "remove", "--force", str(base_tree))
        shutil.rmtree(scratch, ignore_errors=True)
    for tree, result in seen.items():
        print(f"# {tree}: ops_observe from {result['ops_observe']}, aliases {', '.join(result['middleware'])}")
    this_label = head_commit[:7] + (" + uncommitted changes" if dirty else "")
    apps = "every configuration's app in each worker" if together else "one wrapped app per worker"
    print(
        f"# {rounds} rounds x 2 trees, {apps}, {requests} requests x {inner_rounds} inner rounds per "
        f"configuration per worker, GET {PATH}; {elapsed:.0f} s"
    )
    print()
    print(table(base_commit[:7], this_label, figures[base_tree], figures[THIS_TREE]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"base revision (default {DEFAULT_BASE})")
    parser.add_argument("--rounds", type=int, default=10, help="worker rounds per tree (default 10)")
    parser.add_argument("--requests", type=int, default=1500, help="requests per inner round (default 1500)")
    parser.add_argument("--inner-rounds", type=int, default=3, help="inner rounds per worker (default 3)")
    parser.add_argument(
        "--together", action="store_true", help="every configuration's app in one worker (several wrapped apps alive)"
    )
    parser.add_argument("--only", nargs="+", choices=CONFIGS, help="these configurations only (and bare)")
    parser.add_argument("--worker", metavar="TREE", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.requests, args.inner_rounds, tuple(args.configs))
    else:
        only = tuple(args.only) if args.only else CONFIGS
        compare(args.base, args.rounds, args.requests, args.inner_rounds, args.together, only)


if __name__ == "__main__":
    main()
