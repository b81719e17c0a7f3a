"""Settings files from hypothesis: ``load_settings`` gives a ``Settings`` or a ``SettingsError`` that
names the file and a key of the document, never another exception.

The documents are built from the real schema (every key of every installed feature's section,
nested sections and check tables included, read with ``ops_observe.schema.iter_fields``), with
values of the right type, of a wrong type, at the edges (negative, zero, huge, empty, NaN,
``${VAR}`` interpolation), plus unknown keys, then written as TOML; and, apart from those,
arbitrary text. ``validate`` (plugins resolved, check options checked) runs on every document
that loads, and may only raise ``SettingsError`` too.

tests/spine/test_settings.py covers dicts of a few top-level keys; this goes through files and
down every section.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import string
import tempfile
import typing
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_observe.errors import SettingsError
from ops_observe.root import Settings, section_classes
from ops_observe.schema import iter_fields, key_of
from ops_observe.settings import load_settings, validate

pytestmark = pytest.mark.reliability

scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.sampled_from([0, -1, 1, 2**31, 0.0, -0.5, 1.5, 1e308, math.inf, -math.inf, math.nan])
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["", " ", "${HOME}", "${NO_SUCH_VARIABLE_H10}", "${X:-1}", "$$", "/", "http://", "zipkin", "INFO"]
    )
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _values_for(tp: Any, wild: bool) -> st.SearchStrategy[Any]:
    """Values a field of type ``tp`` might be given: of its type (still maybe out of range, empty,
    an unknown name), or, when ``wild``, as often anything at all."""
    origin = get_origin(tp)
    if origin is Literal:
        right: st.SearchStrategy[Any] = st.sampled_from(get_args(tp))
    elif origin in (typing.Union, UnionType):
        right = st.one_of(*(_values_for(arg, wild) for arg in get_args(tp) if arg is not type(None)))
    elif origin is tuple:
        right = st.lists(_values_for(get_args(tp)[0], wild), max_size=3)
    elif tp is bool:
        right = st.booleans()
    elif tp is int:
        right = st.integers(min_value=-10, max_value=10**6)
    elif tp is float:
        right = st.floats(min_value=-10, max_value=1e6, allow_nan=False) | st.integers(min_value=-10, max_value=100)
    elif tp is str:
        right = st.text(alphabet=string.ascii_letters + string.digits + "/:._-${}", max_size=20)
    else:
        right = toml_values
    return right | toml_values if wild else right


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _table(cls: type, wild: bool, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A table for the settings dataclass ``cls``: some of its keys (nested sections recursed), and
    when ``wild`` maybe a stray or misspelt one."""
    entries: dict[str, st.SearchStrategy[Any]] = {}
    for field, tp in iter_fields(cls):
        if _is_section(tp) and depth < 3:
            entries[key_of(field)] = _table(tp, wild, depth + 1)
        elif get_origin(tp) in (Mapping, dict) and _is_section(get_args(tp)[1]) and depth < 3:
            # A table of named sub-tables (health.checks.NAME).
            entries[key_of(field)] = st.dictionaries(
                st.sampled_from(["db", "cache", "x y", ""]), _check_table(get_args(tp)[1], wild, depth + 1), max_size=2
            )
        else:
            entries[key_of(field)] = _values_for(tp, wild)
    if wild:
        entries = {**entries, "bogus_key": toml_values, "servce_name": st.text(max_size=5)}
    return st.fixed_dictionaries({}, optional=entries)


def _check_table(cls: type, wild: bool, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """A named sub-table; a health check's also gets a plugin and the options plugins take."""
    if "plugin" not in {key_of(f) for f, _ in iter_fields(cls)}:
        return _table(cls, wild, depth)
    plugins = st.sampled_from(["tcp", "http", "disk", "memory", "postgres", "redis", "nope", ""])
    names = st.sampled_from(["host", "port", "url", "dsn", "timeout", "min_free_percent", "max_percent", "x"])
    options = st.dictionaries(names, scalars, max_size=3)
    return st.builds(
        lambda base, plugin, extra: {**base, "plugin": plugin, **extra}, _table(cls, wild, depth), plugins, options
    )


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A whole settings document: ``[ops_observe]`` with root keys and feature sections."""
    wild = draw(st.booleans())
    table = draw(_table(Settings, wild))
    for name, cls in sorted(section_classes().items()):
        if draw(st.booleans()):
            table[name] = draw(_table(cls, wild))
    document: dict[str, Any] = {"ops_observe": table}
    if wild and draw(st.sampled_from([False] * 9 + [True])):
        document["other_tool"] = {"key": 1}  # a table beside [ops_observe]: an error naming it
    return document


def first_key(error: SettingsError) -> str:
    return error.key.split(".")[0].split("[")[0]


def load_file(text: str) -> Settings | SettingsError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.toml"
        path.write_text(text, encoding="utf-8")
        try:
            return validate(load_settings(path))
        except SettingsError as exc:
            assert exc.source == str(path)
            return exc


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(value: Any) -> str:
    """``value`` in TOML, tables inline (what the loader reads is the same as with headers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON's escapes are TOML's, but for DEL, which TOML wants escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    items = (f"{k if _BARE_KEY.fullmatch(k) else to_toml(k)} = {to_toml(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def document_text(document: dict[str, Any]) -> str:
    return "".join(f"{name} = {to_toml(table)}\n" for name, table in document.items())


@settings(max_examples=300)
@given(documents())
def test_any_settings_document_loads_or_fails_naming_one_of_its_keys(document: dict[str, Any]) -> None:
    outcome = load_file(document_text(document))
    if isinstance(outcome, Settings):
        return
    assert outcome.key, f"the error names no key: {outcome}"
    table = document["ops_observe"]
    assert first_key(outcome) in {*table, *document, "ops_observe"}, (outcome.key, str(outcome))
    assert outcome.problem and len(str(outcome)) < 2000


@settings(max_examples=200)
@given(
    st.text(max_size=200)
    | st.lists(
        st.sampled_from(
            [
                "[ops_observe]",
                "[ops_observe.tracing]",
                "\n",
                "=",
                '"',
                "a",
                "1.5",
                "[",
                "]",
                "{",
                "}",
                "#",
                "${X}",
                "\\u00",
            ]
        ),
        max_size=20,
    ).map("".join)
)
def test_any_text_as_a_settings_file_loads_or_fails_with_a_settings_error(text: str) -> None:
    outcome = load_file(text)
    assert isinstance(outcome, (Settings, SettingsError))
