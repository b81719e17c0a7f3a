"""Plugin discovery: find, load, validate, with fake distributions on sys.path."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops_observe import PluginError, plugins


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where tests drop fake distributions and modules."""
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.find.cache_clear()
    yield tmp_path
    plugins.find.cache_clear()


def add_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str] | None = None) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def test_first_party_units_are_registered_through_the_groups() -> None:
    names = [spec.name for spec in plugins.find(plugins.MIDDLEWARE)]
    assert names == sorted(names)
    assert {"correlation", "logging", "metrics", "tracing"} <= set(names)
    assert {"http", "tcp", "disk", "memory"} <= {spec.name for spec in plugins.find(plugins.HEALTH_CHECKS)}
    spec = plugins.get(plugins.MIDDLEWARE, "correlation")
    assert spec.distribution.startswith("ops-observe ")
    assert callable(spec.load())


def test_third_party_plugin_is_found_and_loaded(site: Path) -> None:
    add_distribution(
        site,
        "acme_checks",
        """
        [ops_observe.health_checks]
        acme = acme_check:AcmeCheck
        """,
        {"acme_check": "class AcmeCheck:\n    async def check(self):\n        return {'ok': True}\n"},
    )
    spec = plugins.get(plugins.HEALTH_CHECKS, "acme")
    assert spec.distribution == "acme_checks 1.0"
    assert spec.load().__name__ == "AcmeCheck"


def test_duplicate_names_are_refused_naming_both(site: Path) -> None:
    for dist in ("dist_a", "dist_b"):
        add_distribution(site, dist, f"[ops_observe.middleware]\naudit = {dist}_mod:Audit\n")
    with pytest.raises(PluginError) as info:
        plugins.find(plugins.MIDDLEWARE)
    assert str(info.value) == plugins.DUPLICATE.format(
        group=plugins.MIDDLEWARE, name="audit", first="dist_a 1.0", second="dist_b 1.0"
    )


@pytest.mark.parametrize(
    ("value", "modules", "expected"),
    [
        ("missing_module:Thing", {}, "module 'missing_module' is not installed"),
        (
            "raises_on_import:Thing",
            {"raises_on_import": "raise RuntimeError('boom at import')\n"},
            "raised RuntimeError: boom at import",
        ),
        (
            "imports_missing:Thing",
            {"imports_missing": "import not_installed_dependency_xyz\n"},
            "raised ModuleNotFoundError: No module named 'not_installed_dependency_xyz'",
        ),
        ("no_attr:Thing", {"no_attr": "x = 1\n"}, "no_attr:Thing does not exist"),
        ("not_a_class:Thing", {"not_a_class": "Thing = 42\n"}, "42 is not a class"),
        ("no_check:Thing", {"no_check": "class Thing:\n    pass\n"}, "Thing has no check() method"),
    ],
)
def test_load_failures_name_plugin_distribution_and_cause(
    site: Path, value: str, modules: dict[str, str], expected: str
) -> None:
    add_distribution(site, "broken_dist", f"[ops_observe.health_checks]\nbroken = {value}\n", modules)
    spec = plugins.get(plugins.HEALTH_CHECKS, "broken")
    with pytest.raises(PluginError) as info:
        spec.load()
    message = str(info.value)
    assert message.startswith("ops_observe.health_checks: plugin 'broken' from broken_dist 1.0: ")
    assert expected in message


def test_unknown_name_lists_the_installed_ones() -> None:
    with pytest.raises(PluginError) as info:
        plugins.get(plugins.MIDDLEWARE, "nope")
    assert "no plugin named 'nope' is installed; installed: " in str(info.value)
    assert "correlation" in str(info.value)


def test_import_from_string(site: Path) -> None:
    (site / "mw_module.py").write_text("class Audit:\n    class Inner:\n        pass\n")
    (site / "mw_raises.py").write_text("raise ValueError('user bug')\n")
    assert plugins.import_from_string("mw_module:Audit").__name__ == "Audit"
    assert plugins.import_from_string("mw_module.Audit").__name__ == "Audit"
    assert plugins.import_from_string("mw_module:Audit.Inner").__name__ == "Inner"
    with pytest.raises(PluginError, match="module 'nowhere_xyz' is not installed"):
        plugins.import_from_string("nowhere_xyz.thing:X")
    with pytest.raises(PluginError, match="has no attribute 'Nope'"):
        plugins.import_from_string("mw_module:Nope")
    with pytest.raises(PluginError, match="is not a dotted path"):
        plugins.import_from_string("justaname")
    # A module that raises while importing is the user's own bug: re-raised untouched.
    with pytest.raises(ValueError, match="user bug"):
        plugins.import_from_string("mw_raises:X")
