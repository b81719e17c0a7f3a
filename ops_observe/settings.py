"""Settings: one typed, immutable object built from a TOML file, a dict, or the defaults.

Every section is a frozen dataclass whose fields are declared with :func:`setting`; the loader
walks those declarations, so the checks, the error messages, the masked view and the generated
reference in ``docs/settings.md`` all come from one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from ops_observe import plugins
from ops_observe.errors import SettingsError
from ops_observe.root import Settings, section_classes
from ops_observe.schema import describe_type, iter_fields, key_of
from ops_observe.stack import resolve_middleware

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the py310 tox env
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "DEFAULT_FILE",
    "ENV_VAR",
    "Settings",
    "SettingsError",
    "iter_fields",
    "load_settings",
    "to_dict",
    "validate",
]

ENV_VAR = "OPS_OBSERVE_SETTINGS"
DEFAULT_FILE = "ops_observe.toml"
TABLE = "ops_observe"

# Message templates, imported by the tests.
UNKNOWN_KEY = "unknown key {key!r}{hint}"
EXPECTED = "expected {expected}, got {value!r}"
MISSING_VAR = "environment variable {var} is not set and has no default (write ${{{var}:-default}})"
MISSING_KEY = "this key is required"
NO_TABLE = "no [ops_observe] table; every setting sits under [ops_observe]"

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

T = TypeVar("T")


# -- loading ------------------------------------------------------------------------------------


def load_settings(source: Settings | Mapping[str, Any] | str | os.PathLike[str] | None = None) -> Settings:
    """Build the settings from ``source``.

    ``None`` reads the file named by ``$OPS_OBSERVE_SETTINGS``, else ``./ops_observe.toml`` when
    it exists, else uses the defaults. A mapping has the shape of the ``[ops_observe]`` table
    (a top-level ``ops_observe`` key is accepted too). Raises :class:`SettingsError`.
    """
    if isinstance(source, Settings):
        return source
    if source is None:
        env_file = os.environ.get(ENV_VAR)
        if env_file:
            return _load_file(env_file)
        if Path(DEFAULT_FILE).is_file():
            return _load_file(DEFAULT_FILE)
        return _build_settings({}, "<defaults>")
    if isinstance(source, Mapping):
        data = source.get(TABLE, source) if set(source) == {TABLE} else source
        if not isinstance(data, Mapping):
            raise SettingsError("<dict>", TABLE, EXPECTED.format(expected="a table", value=data))
        return _build_settings(data, "<dict>")
    return _load_file(source)


def _load_file(source: str | os.PathLike[str]) -> Settings:
    # Messages name the file exactly as the user gave it (not resolved, not made absolute).
    name = os.fspath(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(name, "", f"cannot read settings file: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(name, "", f"invalid TOML: {exc}") from None
    data = document.get(TABLE)
    if data is None:
        raise SettingsError(name, "", NO_TABLE)
    if not isinstance(data, Mapping):
        raise SettingsError(name, TABLE, EXPECTED.format(expected="a table", value=data))
    extra = sorted(set(document) - {TABLE})
    if extra:
        raise SettingsError(name, extra[0], UNKNOWN_KEY.format(key=extra[0], hint=f"; {NO_TABLE}"))
    return _build_settings(data, name)


def _build_settings(data: Mapping[str, Any], source: str) -> Settings:
    """The root from its own keys, and each feature's section from ``[ops_observe.<feature>]``."""
    data = _interpolate(data, "", source)
    classes = section_classes()
    core = {k: v for k, v in data.items() if k not in classes}
    known = [f.name for f, _ in iter_fields(Settings)] + list(classes)
    for name in core:
        if not isinstance(name, str) or name not in known:
            raise SettingsError(source, str(name), UNKNOWN_KEY.format(key=name, hint=_hint(str(name), known)))
    sections: dict[str, Any] = {name: _build(cls, data.get(name, {}), name, source) for name, cls in classes.items()}
    settings = _build(Settings, core, "", source)
    return dataclasses.replace(settings, source=source, sections=types.MappingProxyType(sections))


def _interpolate(value: Any, key: str, source: str) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, str):
        if "$" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var is None:
                return "$"
            found = os.environ.get(var)
            if found is None or (found == "" and default is not None):
                if default is None:
                    raise SettingsError(source, key, MISSING_VAR.format(var=var))
                return default
            return found

        return _INTERPOLATION.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: _interpolate(v, _join(key, k), source) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_interpolate(v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    return value


def _join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _build(cls: type[T], data: Any, key: str, source: str) -> T:
    if not isinstance(data, Mapping):
        raise SettingsError(source, key, EXPECTED.format(expected="a table", value=data))
    fields = list(iter_fields(cls))
    names = [key_of(f) for f, _ in fields]
    rest_field = next((f for f, _ in fields if f.metadata["rest"]), None)
    values: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name in data:
        if not isinstance(name, str) or name not in names or (rest_field and name == key_of(rest_field)):
            if rest_field is not None and isinstance(name, str):
                rest[name] = data[name]
                continue
            raise SettingsError(source, _join(key, name), UNKNOWN_KEY.format(key=name, hint=_hint(name, names)))
    for field, tp in fields:
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        name = key_of(field)
        if required and name not in data:
            raise SettingsError(source, _join(key, name), MISSING_KEY)
        if field.metadata["rest"]:
            values[field.name] = types.MappingProxyType(rest)
            continue
        if name not in data:
            continue
        path = _join(key, name)
        value = _convert(tp, data[name], path, source)
        check = field.metadata["check"]
        if check is not None and value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise SettingsError(source, path, f"{exc}, got {_show(value)}") from None
        values[field.name] = value
    return cls(**values)


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; known keys: " + ", ".join(names)


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    """Check ``value`` against the declared type, converting strings that came from ``${VAR}``."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, source)  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or value == "" and type(None) in get_args(tp):
            return None
        return _convert(args[0], value, key, source)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise _expected(tp, value, key, source)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise _expected(tp, value, key, source)
    if tp is int or tp is float:
        if isinstance(value, bool):
            raise _expected(tp, value, key, source)
        if isinstance(value, int) or (tp is float and isinstance(value, float)):
            return tp(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
        raise _expected(tp, value, key, source)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _expected(tp, value, key, source)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _expected(tp, value, key, source)
        item = get_args(tp)[0]
        return tuple(_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise _expected(tp, value, key, source)
        item = get_args(tp)[1]
        return types.MappingProxyType({k: _convert(item, v, _join(key, k), source) for k, v in value.items()})
    raise TypeError(f"settings type {tp!r} of {key} is not supported")  # pragma: no cover - a bug of ours


def _expected(tp: Any, value: Any, key: str, source: str) -> SettingsError:
    return SettingsError(source, key, EXPECTED.format(expected=describe_type(tp), value=value))


# -- validating ---------------------------------------------------------------------------------


def validate(settings: Settings) -> Settings:
    """Resolve every plugin the settings name and check its options; returns ``settings``.

    The one validation step that ``wrap()`` and every ``ops-observe`` command run before anything
    starts, beyond what :func:`load_settings` checks in the file itself: each ``middleware`` entry
    is resolved (an alias through ``ops_observe.middleware``, or a dotted path imported), then each
    feature that has a ``validate(settings)`` function checks the plugins its section names (the
    health feature builds its checks against their classes' signatures, the alerts feature
    resolves its packs, and the alert names the section uses). Raises :class:`SettingsError` naming the key, with "did
    you mean" for a name that is close to an installed one.
    """
    for index, name in enumerate(settings.middleware):
        resolve_middleware(name, settings.source, index)
    for spec in plugins.find(plugins.FEATURES):
        check = getattr(spec.load(), "validate", None)
        if check is not None:
            check(settings)
    return settings


# -- showing ------------------------------------------------------------------------------------


def to_dict(obj: Any, *, masked: bool = True) -> Any:
    """The settings as plain data; with ``masked`` (the default) every secret is hidden."""
    from ops_observe.masking import mask_secrets, mask_url

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for field, _ in iter_fields(type(obj)):
            value = getattr(obj, field.name)
            if masked and field.metadata["secret"] and value:
                out[key_of(field)] = "****"
            elif field.metadata["rest"]:
                options = to_dict(value, masked=masked)
                out.update(mask_secrets(options) if masked else options)
            else:
                out[key_of(field)] = to_dict(value, masked=masked)
        if isinstance(obj, Settings):
            out.update((name, to_dict(section, masked=masked)) for name, section in obj.sections.items())
        return out
    if isinstance(obj, Mapping):
        return {k: to_dict(v, masked=masked) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [to_dict(v, masked=masked) for v in obj]
    if masked and isinstance(obj, str):
        return mask_url(obj)
    return obj
