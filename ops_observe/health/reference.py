"""Renders the option tables of the first-party checks for ``docs/health.md``, from their constructors.

Run ``python -m ops_observe.health.reference`` and paste the output between the markers in
``docs/health.md``; a test fails when the two differ, so the docs cannot drift from the code.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from ops_observe import plugins

BEGIN = "<!-- BEGIN generated: python -m ops_observe.health.reference -->"
END = "<!-- END generated -->"
FIRST_PARTY = ("http", "tcp", "disk", "memory", "postgres", "redis")


def option_rows(cls: type) -> list[tuple[str, str, str, str]]:
    """(name, type, default, meaning) of each constructor option, meanings from the ``Args:`` docstring."""
    docs = _args_doc(cls.__doc__ or "")
    rows = []
    for name, parameter in inspect.signature(cls).parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        annotation = parameter.annotation
        kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        if name == "timeout":
            # Not set among the options: the runner passes the check's own `timeout` setting.
            default = "the check's `timeout`"
        elif parameter.default is inspect.Parameter.empty:
            default = "required"
        elif parameter.default is None:
            default = "(none)"
        else:
            default = f"`{_show(parameter.default)}`"
        rows.append((name, f"`{kind}`", default, docs.get(name, "")))
    return rows


def render() -> str:
    """The Markdown of every first-party check's options, between the markers."""
    parts = [BEGIN, ""]
    for name in FIRST_PARTY:
        spec = plugins.get(plugins.HEALTH_CHECKS, name)
        cls = spec.load()
        summary = (cls.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        dist = spec.distribution.rsplit(" ", 1)[0]
        parts.append(f"### `{name}` ({dist}: `{spec.value}`)\n\n{summary}\n")
        parts.append("| option | type | default | meaning |\n| --- | --- | --- | --- |")
        for row in option_rows(cls):
            parts.append("| `{}` | {} | {} | {} |".format(*(cell.replace("|", "\\|") for cell in row)))
        parts.append("")
    parts.append(END)
    return "\n".join(parts) + "\n"


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _args_doc(doc: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Args:`` section, continuation lines joined."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = lines.index("Args:") + 1
    except ValueError:
        return out
    current = None
    for line in lines[start:]:
        if not line.strip():
            break
        stripped = line.strip()
        if line.startswith("    ") and not line.startswith("     ") and ":" in stripped:
            current, _, text = stripped.partition(":")
            out[current] = text.strip()
        elif current is not None:
            out[current] += " " + stripped
    return {k: v.replace("``", "`") for k, v in out.items()}


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
