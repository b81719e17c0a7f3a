"""The generated and hand-written docs agree with the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import ops_observe
from ops_observe import plugins
from ops_observe.settings_reference import render

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_settings_reference_is_current() -> None:
    assert (DOCS / "settings.md").read_text() == render(), (
        "docs/settings.md is stale: run python -m ops_observe.settings_reference > docs/settings.md"
    )


def test_plugins_doc_names_the_real_groups_and_first_party_plugins() -> None:
    text = (DOCS / "plugins.md").read_text()
    for group in plugins.GROUPS:
        assert f"`{group}`" in text
    for group in (plugins.FEATURES, plugins.MIDDLEWARE, plugins.HEALTH_CHECKS):
        for spec in plugins.find(group):
            if spec.distribution.startswith("ops-observe"):
                assert f"`{spec.name}`" in text, f"docs/plugins.md does not mention {spec.name}"


def test_plugins_doc_example_middleware_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS / "plugins.md").read_text()
    source = re.search(r"```python\n(.*?)```", text, re.S)
    assert source is not None
    package = tmp_path / "acme_audit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "middleware.py").write_text(source.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    from tests_support import get

    settings = {"service_name": "billing", "middleware": ["correlation", "acme_audit.middleware:from_settings"]}
    response = get(ops_observe.wrap(app, settings=settings))
    assert response.headers["x-audited-by"] == "billing"
    settings["environment"] = "test"
    assert "x-audited-by" not in get(ops_observe.wrap(app, settings=settings)).headers


def test_performance_page_covers_every_benchmark() -> None:
    text = (DOCS / "performance.md").read_text()
    for script in sorted((DOCS.parent / "benchmarks").glob("bench_*.py")):
        if script.stem != "bench_health":
            assert f"`{script.name}`" in text, f"docs/performance.md does not report {script.name}"


def test_readme_links_only_to_docs_that_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)]+)\)", readme)
    assert links
    for link in links:
        assert (DOCS.parent / link).is_file(), link
