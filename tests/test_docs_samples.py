"""Every ```python block of the listed docs pages runs, and an ``app`` it defines serves a request.

A block that cannot run on its own (it needs a live pool, a user's variables...) is skipped only when
the line directly above its fence says so with an HTML comment starting with ``<!-- fragment``,
e.g. ``<!-- fragment: needs a pool -->``; the comment does not show on the rendered page.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("docs/correlation.md", "docs/metrics.md", "docs/health.md")
"""The pages whose samples are executed; add a page here once its samples run."""

FENCE = re.compile(r"^```python[ \t]*$")
FRAGMENT = re.compile(r"^<!--\s*fragment\b.*-->\s*$")


@dataclass(frozen=True)
class Sample:
    """One ```python block: where it is, its code, and whether it is marked as a fragment."""

    page: str
    line: int
    code: str
    fragment: bool

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def samples(page: str) -> list[Sample]:
    """The ```python blocks of ``page`` (a path relative to the repository)."""
    lines = (ROOT / page).read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            fragment = i > 0 and bool(FRAGMENT.match(lines[i - 1]))
            found.append(Sample(page, i + 1, "\n".join(lines[i + 1 : end]) + "\n", fragment))
            i = end
        i += 1
    return found


ALL = [sample for page in PAGES for sample in samples(page)]
RUNNABLE = [sample for sample in ALL if not sample.fragment]


def run_sample(sample: Sample) -> dict[str, Any]:
    """Execute the block as a module of its own; its namespace."""
    namespace: dict[str, Any] = {"__name__": "docs_sample"}
    exec(compile(sample.code, sample.name, "exec"), namespace)
    return namespace


def get(app: Any, path: str = "/") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # an exception in the app fails the test
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            return await client.get(path)

    return asyncio.run(go())


@pytest.mark.parametrize("sample", RUNNABLE, ids=[s.name for s in RUNNABLE])
def test_sample_runs(sample: Sample) -> None:
    namespace = run_sample(sample)
    app = namespace.get("app")
    if callable(app):
        response = get(app)
        assert response.status_code < 500, f"{sample.name}: its app answered {response.status_code}"


def test_every_page_has_runnable_samples_and_few_fragments() -> None:
    for page in PAGES:
        blocks = [s for s in ALL if s.page == page]
        assert any(not s.fragment for s in blocks), f"{page} has no runnable python sample"
        # A fragment is the exception: most of a page's samples must run.
        assert sum(s.fragment for s in blocks) <= len(blocks) // 2, page


def test_every_fragment_marker_is_directly_above_a_python_block() -> None:
    for page in PAGES:
        lines = (ROOT / page).read_text().splitlines()
        for i, line in enumerate(lines):
            if FRAGMENT.match(line):
                assert i + 1 < len(lines) and FENCE.match(lines[i + 1]), f"{page}:{i + 1}: a stray fragment marker"


def test_the_correlation_sample_returns_a_uuid_in_its_header() -> None:
    """The sample of issue 11: it lacked ``import uuid`` and failed on the first request."""
    sample = next(s for s in RUNNABLE if s.page == "docs/correlation.md" and "generator=" in s.code)
    app = run_sample(sample)["app"]
    response = get(app)
    assert response.status_code == 200
    assert str(uuid.UUID(response.headers["x-trace"])) == response.headers["x-trace"] == response.text
