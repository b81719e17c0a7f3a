"""What ``<path>/detailed`` tells besides the checks: system resources, uptime, version, Python, process."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

import psutil

from ops_observe.root import Settings

_GB = 1024**3
_MB = 1024**2


def prime_cpu_percent() -> None:
    """Start psutil's CPU counters: its first non-blocking reading is always a meaningless 0.0."""
    psutil.cpu_percent(interval=None)
    _process().cpu_percent(interval=None)


def system_info(disk_path: str) -> dict[str, Any]:
    """CPU %, memory and disk (GB, like the Ops-Center answer) of the machine or container."""
    memory = psutil.virtual_memory()
    info: dict[str, Any] = {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "cpu_count": psutil.cpu_count(),
        "memory": {
            "total_gb": round(memory.total / _GB, 2),
            "available_gb": round(memory.available / _GB, 2),
            "used_gb": round(memory.used / _GB, 2),
            "percent": memory.percent,
        },
    }
    try:
        disk = psutil.disk_usage(disk_path)
        info["disk"] = {
            "path": disk_path,
            "total_gb": round(disk.total / _GB, 2),
            "free_gb": round(disk.free / _GB, 2),
            "used_gb": round(disk.used / _GB, 2),
            "percent": disk.percent,
        }
    except OSError as exc:
        info["disk"] = {"path": disk_path, "error": exc.strerror or type(exc).__name__}
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on Windows
        pass
    return info


def uptime_info(now: float | None = None) -> dict[str, Any]:
    """Seconds since this process started, and the same in human form (``2d 3h 4m 5s``)."""
    now = time.time() if now is None else now
    seconds = max(0.0, now - _process().create_time())
    return {
        "seconds": round(seconds, 1),
        "human": human_duration(seconds),
        "started_at": _process().create_time(),
    }


def human_duration(seconds: float) -> str:
    """``93784`` → ``1d 2h 3m 4s``; leading zero units are left out."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    out: list[str] = []
    for value, unit in parts:
        if value or out:
            out.append(f"{value}{unit}")
    out.append(f"{secs}s")
    return " ".join(out)


def version_info(settings: Settings) -> dict[str, str]:
    """The service's version block, from the root settings."""
    return {
        "version": settings.version,
        "commit": settings.commit,
        "build_date": settings.build_date,
        "environment": settings.environment,
    }


def python_info() -> dict[str, str]:
    """Interpreter version and implementation, and the platform."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": os.path.basename(sys.executable),
    }


def process_info() -> dict[str, Any]:
    """PID, RSS, CPU %, threads and open file descriptors of this process."""
    process = _process()
    with process.oneshot():
        info: dict[str, Any] = {
            "pid": process.pid,
            "rss_mb": round(process.memory_info().rss / _MB, 1),
            "cpu_percent": process.cpu_percent(interval=None),
            "threads": process.num_threads(),
        }
        if hasattr(process, "num_fds"):
            info["open_fds"] = process.num_fds()
    return info


_PROCESS: dict[int, psutil.Process] = {}


def _process() -> psutil.Process:
    # One Process object per PID (a fork gets its own): psutil's cpu_percent() needs the same
    # object between readings to measure the interval.
    pid = os.getpid()
    process = _PROCESS.get(pid)
    if process is None:
        process = _PROCESS[pid] = psutil.Process(pid)
    return process
