"""docs/tracing.md agrees with the code: its settings table is the generated one, its names are real."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ops_observe.settings_reference import render
from ops_observe.tracing.export import DROP_REASONS
from ops_observe.tracing.feature import DROPPED_METRIC
from ops_observe.tracing.provider import INSTRUMENTATIONS
from ops_observe.tracing.settings import TracingSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracing.md"
BLOCK = re.compile(r"(<!-- generated:[^\n]*-->\n)(.*?)(<!-- end generated -->)", re.S)


def generated_table() -> str:
    """The ``[ops_observe.tracing]`` table of the settings reference, header included."""
    reference = render()
    section = reference.split("## `[ops_observe.tracing]`", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"


def test_the_settings_table_is_the_generated_one() -> None:
    match = BLOCK.search(DOC.read_text())
    assert match is not None
    assert match.group(2) == generated_table(), "stale: run python tests/tracing/test_tracing_docs.py"


def test_every_setting_every_drop_reason_and_instrumentation_is_documented() -> None:
    text = DOC.read_text()
    for name in TracingSettings.__dataclass_fields__:
        assert f"`{name}`" in text, name
    assert "`" + DROPPED_METRIC.format(ns="<ns>") + "_total`" in text
    for reason in DROP_REASONS:
        assert f"`{reason}`" in text
    for name, (_, _, package) in INSTRUMENTATIONS.items():
        assert f'"{name}"' in text
        assert package.startswith("opentelemetry-instrumentation-")


if __name__ == "__main__":  # rewrite the generated table in place
    DOC.write_text(BLOCK.sub(lambda m: m.group(1) + generated_table() + m.group(3), DOC.read_text()))
    sys.exit(0)
