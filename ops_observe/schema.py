"""The declarations settings are made of: :func:`setting`, the shared checks, the type words.

Kept apart from the loader so that each section module can import it without a cycle.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

Check = Callable[[Any], None]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    check: Check | None = None,
    secret: bool = False,
    factory: Callable[[], Any] | None = None,
    rest: bool = False,
    key: str | None = None,
) -> Any:
    """Declare one setting: its default, a one-line doc, an optional check raising ``ValueError``.

    ``secret`` masks the value wherever settings are shown; ``rest`` marks the mapping that
    collects the keys a section does not declare (a health check's own options); ``key`` is the
    key in the file when it cannot be the field's name (``for``, a Python keyword).
    """
    metadata = {"doc": doc, "check": check, "secret": secret, "rest": rest, "key": key or ""}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def iter_fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
    """Yield each user-facing field of a settings dataclass with its resolved type."""
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        if "doc" in field.metadata:
            yield field, hints[field.name]


def key_of(field: dataclasses.Field[Any]) -> str:
    """The key a field is read from and shown as: its ``key`` when declared, else its name."""
    return str(field.metadata.get("key") or field.name)


def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules[cls.__module__]
    return get_type_hints(cls, vars(module))


# -- checks shared by the sections --------------------------------------------------------------


def non_empty(value: str) -> None:
    if not value.strip():
        raise ValueError("must not be empty")


def between(low: float, high: float) -> Check:
    def check(value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")

    return check


def positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def url_path(value: str) -> None:
    if not value.startswith("/") or any(c in value for c in " ?#"):
        raise ValueError("must be a path starting with '/', without spaces, '?' or '#'")


_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def metric_name(value: str | None) -> None:
    if value is not None and not _NAME.fullmatch(value):
        raise ValueError("must be a Prometheus name: letters, digits and '_', not starting with a digit")


def networks(values: tuple[str, ...]) -> None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network such as '10.0.0.0/8'") from None


def unique(values: tuple[str, ...]) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)


def describe_type(tp: Any) -> str:
    """The expected form of a type, in words, for error messages and the reference docs."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin in (Union, types.UnionType):
        args = [describe_type(a) for a in get_args(tp) if a is not type(None)]
        return " or ".join(args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is tuple:
        item = get_args(tp)[0]
        if get_origin(item) is Literal:
            return "a list of values from " + ", ".join(repr(a) for a in get_args(item))
        return f"a list of {_plural(describe_type(item))}"
    if origin in (Mapping, dict, typing.Mapping):
        return f"a table of {_plural(describe_type(get_args(tp)[1]))}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, "a value")


def _plural(words: str) -> str:
    return words.removeprefix("a ").removeprefix("an ") + "s"
