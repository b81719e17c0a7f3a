"""The session's new user: one clean clone and one fresh virtual environment (see newcomer_env.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from newcomer_env import ROOT, Newcomer, make_newcomer

from services import need


@pytest.fixture(scope="session")
def newcomer() -> Iterator[Newcomer]:
    """Made once per session: building the environment takes about a minute."""
    need(
        shutil.which("git") and (ROOT / ".git").exists(), "the newcomer suite clones the repository: git and a checkout"
    )
    with make_newcomer() as user:
        yield user
