"""The fenced blocks of the docs pages and the README, for the tests that run or load them.

A block is a fragment (a part of a bigger file, or code that cannot run on its own) when the line
directly above its fence is an HTML comment starting with ``<!-- fragment``, e.g.
``<!-- fragment: needs a pool -->``; the comment does not show on the rendered page. A block whose
first line is a comment naming a file (``# main.py``, ``# ops_observe.toml``, ``// config.alloy``)
is that file, as a reader would save it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^```([\w-]*)[ \t]*$")
FRAGMENT = re.compile(r"^<!--\s*fragment\b.*-->\s*$")
FILENAME = re.compile(r"^(?:#|//)\s*([\w./-]+\.(?:py|toml|ya?ml|alloy|conf|json))\s*$")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A ``${VAR}`` without a default: it must be set for the settings to load."""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code, whether it is a fragment, its file name."""

    page: str
    line: int
    language: str
    code: str
    fragment: bool

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def filename(self) -> str | None:
        """The file the block is, when its first line names one (``# main.py``)."""
        first = self.code.split("\n", 1)[0]
        found = FILENAME.match(first)
        return found.group(1) if found else None


def pages() -> list[str]:
    """The README and every page of docs/, as paths relative to the repository."""
    return ["README.md", *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))]


def blocks(page: str, language: str | None = None) -> list[Block]:
    """The fenced blocks of ``page`` (a path relative to the repository), of one language if given."""
    lines = (ROOT / page).read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            fragment = i > 0 and bool(FRAGMENT.match(lines[i - 1]))
            found.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", fragment))
            i = end
        i += 1
    return [block for block in found if language is None or block.language == language]


def files_for(block: Block, languages: tuple[str, ...] = ("python", "toml")) -> dict[str, str]:
    """The files the page shows for ``block``: what a reader has saved when they run it.

    For each file name, the nearest block of that name above ``block``, else the first one below
    it (a page may show ``main.py`` before the ``ops_observe.toml`` it reads); ``block`` itself
    and fragments are left out.
    """
    above: dict[str, str] = {}
    below: dict[str, str] = {}
    for other in blocks(block.page):
        if other.line == block.line or other.language not in languages or not other.filename or other.fragment:
            continue
        if other.line < block.line:
            above[other.filename] = other.code
        else:
            below.setdefault(other.filename, other.code)
    return {**below, **above}


def placeholder_environment(page: str) -> dict[str, str]:
    """A value for each ``${VAR}`` without a default that the page's settings files use."""
    names = {name for block in blocks(page, "toml") for name in VARIABLE.findall(block.code)}
    names |= {
        name for block in blocks(page, "yaml") if "ops_observe" in block.code for name in VARIABLE.findall(block.code)
    }
    return {name: PLACEHOLDERS.get(name, "placeholder") for name in sorted(names)}


PLACEHOLDERS = {
    "DATABASE_URL": "postgresql://app:secret@127.0.0.1:9/app",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "APP_VERSION": "1.4.2",
}
"""Plausible values for the variables the pages use; any other gets ``placeholder``."""
