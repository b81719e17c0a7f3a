"""Two uvicorn workers: exact totals whichever answers the scrape, a killed worker's counts kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from metrics_support import (
    NS,
    restore_logging,  # noqa: F401 - an autouse fixture
    samples,
    value,
)
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from services import free_port, get_when_up

HERE = Path(__file__).resolve().parent
TOTAL = f"{NS}_http_requests_total"
LABELS = {"method": "GET", "endpoint": "/pid/{n}", "status": "200"}


def _stale_run(directory: Path) -> None:
    """Files an earlier run left: a counter of a dead process and its registration."""
    stale = MmapedDict(str(directory / "counter_999999.db"))
    key = mmap_key(f"{NS}_http_requests", TOTAL, list(LABELS), list(LABELS.values()), "stale")
    stale.write_value(key, 1000.0, 0.0)
    stale.close()
    (directory / "live-999999").touch()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    directory = tmp_path / "prom"
    directory.mkdir()
    _stale_run(directory)
    port = free_port()
    env = {**os.environ, "MP_DIR": str(directory), "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "metrics_mp_app:app", "--workers", "2", "--port", str(port),
         "--host", "127.0.0.1", "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
        cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        get_when_up(f"{base}/metrics", process=process)
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        process.stderr.close()  # type: ignore[union-attr]


def _hit(base: str, count: int, pids: set[str]) -> None:
    for i in range(count):
        # A fresh connection each time, so the kernel spreads them over the workers.
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{base}/pid/{i}", headers={"Connection": "close"})
            assert response.status_code == 200
            pids.add(response.text)


def _totals(base: str, scrapes: int = 12) -> set[float | None]:
    found = set()
    for _ in range(scrapes):
        with httpx.Client(timeout=10) as client:
            text = client.get(f"{base}/metrics", headers={"Connection": "close"}).text
        found.add(value(text, TOTAL, **LABELS))
    return found


def test_two_workers_exact_totals(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, process = server
    pids: set[str] = set()
    sent = 0
    while len(pids) < 2 and sent < 600:
        _hit(base, 20, pids)
        sent += 20
    assert len(pids) == 2, f"one worker answered all {sent} requests"
    # Whichever worker answers the scrape, the total is exact (and the stale run's 1000 is gone).
    assert _totals(base) == {sent}
    with httpx.Client(timeout=10) as client:
        text = client.get(f"{base}/metrics").text
    process_pids = {
        dict(labels).get("pid") for (name, labels), _ in samples(text).items() if name == "process_cpu_seconds_total"
    }
    assert process_pids >= pids
    assert value(text, f"{NS}_build_info", service="svc", version="dev", commit="unknown", build_date="unknown",
                 environment="development") == 1  # fmt: skip
    # The directory every scrape reads is measured, for the suite pack's MultiprocessDirectoryGrowing.
    assert (value(text, f"{NS}_metrics_multiprocess_files") or 0) >= 2
    assert (value(text, f"{NS}_metrics_multiprocess_bytes") or 0) > 0

    # A worker dies; its counts stay in the totals after the master replaces it.
    victim = int(sorted(pids)[0])
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    new_pids: set[str] = set()
    while time.monotonic() < deadline:
        _hit(base, 10, new_pids)
        sent += 10
        if len(new_pids - pids) >= 1:
            break
    assert new_pids - pids, "the killed worker was not replaced"
    assert _totals(base) == {sent}
