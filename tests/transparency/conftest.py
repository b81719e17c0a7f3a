"""Fixtures of the transparency tests: both anyio backends, quiet settings, process state restored.

``tests/conftest.py``'s autouse ``_restore_process_logging`` (``setup.reset()``) applies here as
everywhere; ``_restore_logging`` below is the one of ``tests/logging/conftest.py`` (a conftest of a
sibling folder cannot be imported here), which also puts the root logger's handlers and level back,
so that a ``wrap()`` that changes them does not leak into other tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# The comparisons assert in these helper modules: have pytest explain their failures too.
pytest.register_assert_rewrite("compare", "driver")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def quiet(tmp_path: Path) -> dict[str, Any]:
    """The whole suite, printing nothing: no span exporter, the JSON log lines into a file."""
    return {"tracing": {"exporter": "none"}, "logging": {"sink": str(tmp_path / "log.jsonl")}}


@pytest.fixture(params=["full", "correlation-only"])
def settings(request: pytest.FixtureRequest, quiet: dict[str, Any]) -> dict[str, Any]:
    """Each comparison runs with the whole suite and with the correlation middleware alone."""
    if request.param == "full":
        return quiet
    return {**quiet, "middleware": ["correlation"]}
