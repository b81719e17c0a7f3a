"""docs/alerts.md is what the generator writes, and every alert has its runbook there."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from catalog_support import CUSTOMISED, DEFAULT, WITH_CHECKS

from ops_observe.alerts import reference
from ops_observe.alerts.export import alerts, rule_groups
from ops_observe.alerts.runbooks import RUNBOOKS
from ops_observe.alerts.settings import DEFAULT_RUNBOOK_BASE
from ops_observe.settings import load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the py310 tox env
    import tomli as tomllib

PAGE = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
EXAMPLE = PAGE.parent / "alertmanager.yml"


def test_docs_alerts_md_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == reference.render(alertmanager_example=EXAMPLE), (
        "docs/alerts.md is stale: python -m ops_observe.alerts.reference > docs/alerts.md"
    )


@pytest.mark.parametrize("data", [DEFAULT, WITH_CHECKS, CUSTOMISED, reference.DOCS_SETTINGS])
def test_every_alert_has_a_runbook_and_its_url_points_at_it(data: dict[str, Any]) -> None:
    page = PAGE.read_text(encoding="utf-8")
    settings = load_settings(data)
    for alert in alerts(settings):
        assert alert.name in RUNBOOKS, f"{alert.name} has no entry in ops_observe/alerts/runbooks.py"
        anchor = alert.name.lower()
        assert alert.runbook_url == f"{settings.alerts.runbook_base}#{anchor}"
        assert f'<a id="{anchor}"></a>\n\n### {alert.name}\n' in page, f"docs/alerts.md has no runbook for {alert.name}"


def test_no_runbook_without_its_alert() -> None:
    every = {a.name for data in (WITH_CHECKS, reference.DOCS_SETTINGS) for a in alerts(load_settings(data))}
    assert set(RUNBOOKS) - every == set()


def test_the_default_runbook_base_is_this_page() -> None:
    assert DEFAULT_RUNBOOK_BASE.endswith("/docs/alerts.md")


def test_every_alert_is_on_at_the_docs_settings() -> None:
    """The page shows every alert as it is exported: none is off at the settings it is written at."""
    assert [a.name for a in alerts(load_settings(reference.DOCS_SETTINGS)) if not a.enabled] == []


def test_the_page_shows_the_alertmanager_example_whole() -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    assert f"```yaml\n{example}```" in PAGE.read_text(encoding="utf-8")


def test_the_settings_samples_of_the_page_are_valid() -> None:
    """Each ```toml block of the page, as a settings file, exports without error."""
    blocks = re.findall(r"^```toml\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.M | re.S)
    assert len(blocks) >= 3
    for block in blocks:
        data = tomllib.loads(block)
        assert rule_groups(load_settings(data["ops_observe"])), block
