"""Fixtures of the logging tests: loguru and ``logging`` restored after each test, captured JSON lines."""

from __future__ import annotations

import pytest

from log_lines import Lines


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
