"""Every ```python block of the docs pages and the README runs, and an ``app`` it defines serves a request.

A block that cannot run on its own (it needs a live pool, a Django project...) is skipped only when
the line directly above its fence says so with an HTML comment starting with ``<!-- fragment``,
e.g. ``<!-- fragment: needs a pool -->``; the comment does not show on the rendered page.

A page that shows files a reader saves (a block starting ``# ops_observe.toml``, ``# main.py``) has
them written into a fresh folder, the working directory of its later samples, as the reader's
folder would be; a ``${VAR}`` without a default in the page's settings gets a placeholder value.
The Django project of the quick start, which these in-process runs cannot host (Django's settings
are process-wide), is served for real by ``tests/newcomer/``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from docs_blocks import FENCE, FRAGMENT, ROOT, Block, blocks, files_for, pages, placeholder_environment

PAGES = (
    "README.md",
    "docs/quickstart.md",
    "docs/correlation.md",
    "docs/logging.md",
    "docs/metrics.md",
    "docs/tracing.md",
    "docs/health.md",
    "docs/plugins.md",
    "docs/django.md",
)
"""The pages whose samples are executed: every page with a ```python block (a test keeps it so)."""

Sample = Block

ALL = [sample for page in PAGES for sample in blocks(page, "python")]
RUNNABLE = [sample for sample in ALL if not sample.fragment]


def samples(page: str) -> list[Block]:
    """The ```python blocks of ``page`` (a path relative to the repository)."""
    return blocks(page, "python")


def run_sample(sample: Block) -> dict[str, Any]:
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


@pytest.fixture
def reader_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory on the module path, as the folder of a reader following a page."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:  # modules the sample imported from the folder
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.mark.parametrize("sample", RUNNABLE, ids=[s.name for s in RUNNABLE])
def test_sample_runs(sample: Block, reader_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in placeholder_environment(sample.page).items():
        monkeypatch.setenv(name, value)
    for filename, code in files_for(sample).items():
        path = reader_folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    namespace = run_sample(sample)
    app = namespace.get("app")
    if callable(app):
        response = get(app)
        assert response.status_code < 500, f"{sample.name}: its app answered {response.status_code}"


def test_every_page_with_python_samples_is_executed() -> None:
    with_samples = [page for page in pages() if blocks(page, "python")]
    assert sorted(with_samples) == sorted(PAGES)


def test_every_page_has_runnable_samples_and_few_fragments() -> None:
    for page in PAGES:
        page_blocks = [s for s in ALL if s.page == page]
        assert any(not s.fragment for s in page_blocks), f"{page} has no runnable python sample"
        # A fragment is the exception: most of a page's samples must run.
        assert sum(s.fragment for s in page_blocks) <= len(page_blocks) // 2, page


def test_every_fragment_marker_is_directly_above_a_block() -> None:
    for page in pages():
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


def test_the_quickstart_apps_answer_with_the_correlation_id_they_read(
    reader_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Starlette and FastAPI ``main.py`` of the quick start: the id in the body is the header's."""
    apps = [s for s in RUNNABLE if s.page == "docs/quickstart.md" and s.filename == "main.py"]
    assert len(apps) == 2
    for sample in apps:
        for filename, code in files_for(sample).items():
            (reader_folder / filename).parent.mkdir(parents=True, exist_ok=True)
            (reader_folder / filename).write_text(code)
        response = get(run_sample(sample)["app"], "/items/42")
        assert response.status_code == 200, sample.name
        assert response.json() == {"item": 42, "correlation_id": response.headers["x-correlation-id"]}
