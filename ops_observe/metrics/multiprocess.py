"""Several workers (uvicorn ``--workers N``, gunicorn): prometheus-client's multiprocess mode, set up.

Each worker writes its values to memory-mapped files in one directory; a scrape, answered by any
worker, reads them all, so totals are exact whichever worker answers. On top of what
prometheus-client does, this module:

* **wipes the directory at the start of a run**: the first worker to start, finding no live
  process registered in the directory, deletes what an earlier run left (under a file lock, so
  two workers starting together agree);
* **merges and sweeps dead workers' files** (a worker restarted by its master): their counters
  and histograms are added into ``*_archive.db`` files, so totals never go back, and their
  per-process gauges are dropped; done at each worker start and each scrape;
* **keeps the process metrics**: ``process_*`` of every live worker, with a ``pid`` label;
* shares one **key for the id hash** among the workers of a run (``.hash_key`` in the directory).

Limits: metrics made with prometheus-client before the mode is switched on (before the first
app is wrapped in that process) are not in the files and are not exposed; custom collectors
registered on the app's registry (a callback gauge, a health feature's collector) are exposed
as seen by the worker that answers the scrape; exemplars are not kept (prometheus-client does
not support them in this mode). One wrapped app per process: two apps would share the files.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from prometheus_client import mmap_dict, multiprocess, values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

logger = logging.getLogger("ops_observe.metrics")

# prometheus-client leaves these untyped; Any keeps mypy --strict quiet without hiding our own types.
MmapedDict: Any = mmap_dict.MmapedDict
MultiProcessCollector: Any = multiprocess.MultiProcessCollector
_MultiProcessValue: Any = values.MultiProcessValue

RUN_PREFIX = "ops-observe-metrics-"
"""The name prefix of the folders :func:`run_directory` makes in the temporary folder."""

_LOCK = ".lock"
_KEY = ".hash_key"
_LIVE = "live-"
_ARCHIVE = "archive"


@dataclass
class Multiprocess:
    """The multiprocess set-up of this process: its directory and the run's shared hash key."""

    directory: str
    hash_key: bytes

    def sweep(self) -> None:
        """Merge and delete the files of workers that are gone."""
        with _locked(self.directory):
            _sweep(self.directory)

    def collector(self, registry: CollectorRegistry, process_metrics: bool) -> Collector:
        """What a scrape exposes: every worker's values, custom collectors, live workers' process metrics."""
        return _Combined(self.directory, registry, process_metrics)

    def directory_collector(self, namespace: str) -> Collector:
        """``<ns>_metrics_multiprocess_files`` and ``_bytes``: what every scrape reads, for an alert on its growth."""
        return DirectoryCollector(self.directory, namespace)


def setup(directory: str) -> Multiprocess:
    """Switch this process to multiprocess mode on ``directory``; wipe it if this run is new."""
    os.makedirs(directory, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = _MultiProcessValue()
    pid = os.getpid()
    with _locked(directory):
        if not any(_alive(p) for p in _registered(directory) if p != pid):
            _wipe(directory)
        _sweep(directory)
        with open(os.path.join(directory, f"{_LIVE}{pid}"), "w"):
            pass
        key_path = os.path.join(directory, _KEY)
        if not os.path.exists(key_path):
            with open(key_path, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        with open(key_path, "rb") as fh:
            key = fh.read()
    return Multiprocess(directory, key)


@contextlib.contextmanager
def run_directory() -> Iterator[str]:
    """A fresh directory for the workers of one run (``ops-observe serve --workers N``), removed after it.

    The directory and everything in it is removed when the block ends: normally, on SIGINT (a
    ``KeyboardInterrupt``), and on SIGTERM. uvicorn's supervisor takes both signals over while it
    runs, stops its workers and returns; a SIGTERM that arrives before it has taken over (or after
    it has returned) exits through ``SystemExit`` here instead of killing the process on the spot,
    so the removal still runs. Only SIGKILL leaves the directory behind.
    """
    directory = tempfile.mkdtemp(prefix=RUN_PREFIX)
    previous = None
    if threading.current_thread() is threading.main_thread():  # signals are the main thread's
        previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield directory
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(directory, ignore_errors=True)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    with open(os.path.join(directory, _LOCK), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registered(directory: str) -> list[int]:
    """Processes known in the directory: registered at set-up, or owning value files.

    Value files count too, for workers forked from a master that wrapped the app before forking
    (gunicorn ``--preload``): they never ran the set-up themselves.
    """
    pids = set()
    for path in glob.glob(os.path.join(directory, f"{_LIVE}*")):
        suffix = os.path.basename(path)[len(_LIVE) :]
        if suffix.isdigit():
            pids.add(int(suffix))
    for path in glob.glob(os.path.join(directory, "*_*.db")):
        suffix = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[1]
        if suffix.isdigit():
            pids.add(int(suffix))
    return sorted(pids)


def _wipe(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, "*.db")) + glob.glob(os.path.join(directory, f"{_LIVE}*")):
        os.remove(path)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(directory, _KEY))


def _sweep(directory: str) -> None:
    for pid in _registered(directory):
        if not _alive(pid):
            _merge_dead(directory, pid)
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, f"{_LIVE}{pid}"))


def _merge_dead(directory: str, pid: int) -> None:
    for path in glob.glob(os.path.join(directory, f"*_{pid}.db")):
        parts = os.path.basename(path)[: -len(".db")].split("_")
        typ = parts[0]
        mode = parts[1] if typ == "gauge" and len(parts) == 3 else ""
        if typ in ("counter", "histogram", "summary"):
            _merge(path, os.path.join(directory, f"{typ}_{_ARCHIVE}.db"), "sum")
        elif mode in ("sum", "max", "min", "mostrecent"):
            _merge(path, os.path.join(directory, f"gauge_{mode}_{_ARCHIVE}.db"), mode)
        # live* and all gauges describe a process: gone with it.
        os.remove(path)


def _merge(source: str, archive_path: str, how: str) -> None:
    archive = MmapedDict(archive_path)
    try:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(source):
            old, old_timestamp = archive.read_value(key)
            if how == "sum":
                archive.write_value(key, old + value, 0.0)
            elif how == "max":
                archive.write_value(key, max(old, value), 0.0)
            elif how == "min":
                archive.write_value(key, min(old, value) if old_timestamp or old else value, 0.0)
            elif timestamp >= old_timestamp:
                archive.write_value(key, value, timestamp)
    finally:
        archive.close()


class DirectoryCollector(Collector):
    """The number and total size of the value files in the multiprocess directory, read at each scrape.

    Files of dead workers are merged and swept; a directory that keeps growing means they are
    not (or that workers churn), and every scrape gets slower as it reads them all.
    """

    def __init__(self, directory: str, namespace: str) -> None:
        self.directory = directory
        self.namespace = namespace

    def collect(self) -> Iterator[Metric]:
        count, size = 0, 0
        for path in glob.glob(os.path.join(self.directory, "*.db")):
            with contextlib.suppress(FileNotFoundError):  # swept by another worker meanwhile
                size += os.path.getsize(path)
                count += 1
        files = GaugeMetricFamily(
            f"{self.namespace}_metrics_multiprocess_files", "Value files in the multiprocess metrics directory."
        )
        files.add_metric([], count)
        total = GaugeMetricFamily(
            f"{self.namespace}_metrics_multiprocess_bytes",
            "Total size of the multiprocess metrics directory's value files.",
        )
        total.add_metric([], size)
        yield files
        yield total


class _Combined(Collector):
    def __init__(self, directory: str, registry: CollectorRegistry, process_metrics: bool) -> None:
        self.directory = directory
        self.files = CollectorRegistry()
        MultiProcessCollector(self.files, path=directory)
        self.registry = registry
        self.process_metrics = process_metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.files.collect()
        # Custom collectors (not prometheus-client metric objects, which live in the files).
        collectors = getattr(self.registry, "_collector_to_names", {})
        for collector in list(collectors):
            if not isinstance(collector, (MetricWrapperBase, ProcessCollector)):
                yield from collector.collect()
        if self.process_metrics:
            yield from self._process_metrics()

    def _process_metrics(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid in sorted(_registered(self.directory)):
            if not _alive(pid):
                continue
            collector = ProcessCollector(pid=_constant(pid), registry=None)
            for metric in collector.collect():
                target = merged.get(metric.name)
                if target is None:
                    target = merged[metric.name] = Metric(metric.name, metric.documentation, metric.type)
                for sample in metric.samples:
                    target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


def _constant(pid: int) -> Any:
    return lambda: pid
