"""Fixtures of the logging tests: captured JSON lines (loguru and `logging` are restored by tests/conftest.py)."""

from __future__ import annotations

import pytest

from log_lines import Lines


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
