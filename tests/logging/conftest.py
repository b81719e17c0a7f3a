"""Fixtures of the logging tests: loguru and ``logging`` restored after each test, captured JSON lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ops_observe.logging import setup

from log_lines import Lines


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # loguru's logger and logging's root are process-wide: every test leaves them as it found them.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    setup.reset()
    root.handlers = handlers
    root.setLevel(level)


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
