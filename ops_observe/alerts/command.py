"""``ops-observe alerts export`` and ``ops-observe alerts list``: the packs' rules, written or tabulated."""

from __future__ import annotations

import os
import tempfile
from typing import TextIO

from ops_observe.alerts.context import number
from ops_observe.alerts.export import Format, alerts, render
from ops_observe.alerts.rules import Alert
from ops_observe.root import Settings

COLUMNS = ("name", "pack", "severity", "threshold", "for", "enabled")


def export_command(settings: Settings, format: Format, output: str | None, out: TextIO) -> int:
    """Write the rules to ``output``, else to ``out``.

    The file is replaced atomically: Prometheus reloading a half-written rule file would fail.
    """
    text = render(settings, format)
    if not output:
        out.write(text)
        return 0
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".ops-observe-rules-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; Prometheus often runs as another user
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


def list_command(settings: Settings, out: TextIO) -> int:
    """Print one line per alert of the enabled packs, disabled ones with the reason."""
    rows = [COLUMNS] + [_row(alert) for alert in alerts(settings)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
    return 0


def _row(alert: Alert) -> tuple[str, ...]:
    threshold = "-" if alert.threshold is None else number(alert.threshold)
    enabled = "yes" if alert.enabled else f"no ({alert.disabled_reason})" if alert.disabled_reason else "no"
    return (alert.name, alert.pack, alert.severity, threshold, alert.for_, enabled)
