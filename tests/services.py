"""Throwaway PostgreSQL and Redis servers, free ports, and `need()`, for every test folder.

A module of its own (not conftest.py) so that any test may import it by a name no other
conftest.py can shadow. The fixtures that use it are in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: object, reason: str) -> None:
    """Skip the test when ``condition`` is false; under ``CI=true`` fail it instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI is missing a requirement: {reason}")
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def get_when_up(
    url: str, *, process: subprocess.Popen[Any] | None = None, timeout: float = 30.0, **kwargs: Any
) -> httpx.Response:
    """GET ``url`` once a server started in the background answers it.

    Fails when ``process`` (the server) exits first, with what it wrote to a piped stderr, or
    when nothing answers within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, **{"timeout": 2, **kwargs})
        except httpx.TransportError:
            if process is not None and process.poll() is not None:
                output = process.communicate(timeout=5)
                raise RuntimeError(f"the server exited with {process.returncode}: {output}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return shutil.which(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package's "postgres" user runs it instead.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class PostgresServer:
    """A PostgreSQL server of its own, on a free port, that a test may stop and start again."""

    def __init__(self, template: Path, workdir: Path) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.datadir = workdir / "data"
        shutil.copytree(template, self.datadir, symlinks=True)
        self.socketdir = workdir / "sock"
        self.socketdir.mkdir()
        for path in (workdir, self.socketdir):
            _chown_postgres(path)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.datadir)], check=True)
        self.dsn = f"postgresql://postgres@{self.host}:{self.port}/postgres?connect_timeout=5"
        self.start()

    def _ctl(self, *args: str) -> None:
        cmd = _as_postgres([_pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.datadir), "-s", *args])
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socketdir} -c listen_addresses={self.host} -c fsync=off"
        self._ctl("-w", "-l", str(self.datadir / "server.log"), "-o", options, "start")
        wait_for_port(self.port)

    def stop(self) -> None:
        self._ctl("-w", "-m", "immediate", "stop")


# -- Redis --------------------------------------------------------------------------------------


class RedisServer:
    """A Redis server of its own, on a free port, that a test may stop and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = f"redis://{self.host}:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        cmd = [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
