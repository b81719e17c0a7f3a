"""Fixtures of the health tests (imported by the test modules: a conftest.py here would shadow tests/conftest.py)."""

from __future__ import annotations

import socket
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops_observe import plugins


class Blackhole:
    """A TCP listener on a free loopback port that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # kept open, never read from or written to

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture(name="blackhole")
def blackhole_fixture() -> Iterator[Blackhole]:
    hole = Blackhole()
    try:
        yield hole
    finally:
        hole.close()


@pytest.fixture(name="fresh_plugins")
def fresh_plugins_fixture() -> Iterator[None]:
    """Forget discovered plugins before and after: ``plugins.find`` is cached."""
    plugins.find.cache_clear()
    try:
        yield
    finally:
        plugins.find.cache_clear()


@pytest.fixture(name="third_party_dist")
def third_party_dist_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: None) -> Iterator[Path]:
    """A throwaway distribution ``acme-health`` registering the check ``acme`` (a fake ``*.dist-info``)."""
    package = tmp_path / "acme_health_check"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from ops_observe.health import HealthCheck, ServiceUnavailable

            PROBES = []
            BUILT = []


            class AcmeCheck(HealthCheck):
                """A third party's check: fails when told to."""

                def __init__(self, *, answer: str = "42", fail: bool = False) -> None:
                    BUILT.append(answer)
                    self.answer = answer
                    self.fail = fail

                async def check(self):
                    PROBES.append(self.answer)
                    if self.fail:
                        raise ServiceUnavailable("acme is down")
                    return {"answer": self.answer}
            '''
        )
    )
    info = tmp_path / "acme_health-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-health\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[ops_observe.health_checks]\nacme = acme_health_check:AcmeCheck\nbroken = acme_health_missing:Nope\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.find.cache_clear()
    try:
        yield tmp_path
    finally:
        sys.modules.pop("acme_health_check", None)
