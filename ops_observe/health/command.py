"""``ops-observe check``: run every configured check once, print a table or JSON, exit 0 or 1.

For exec probes and deploy gates: the exit status is 0 when every critical check passes (or
warns), 1 otherwise. Non-critical checks are run and shown too, but never change the status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import TextIO

from ops_observe.health.runner import FAIL, CheckResult, HealthChecks, build_checks
from ops_observe.health.service import overall
from ops_observe.root import Settings

_COLUMNS = ("CHECK", "PLUGIN", "CRITICAL", "STATUS", "MS", "ERROR")


def check_command(settings: Settings, *, as_json: bool, out: TextIO) -> int:
    """Run the checks of ``settings`` once and print the result; 0 when all critical pass, else 1.

    Raises :class:`ops_observe.SettingsError` when a check cannot be built (the CLI exits 2).
    """
    checks = HealthChecks(build_checks(settings), cache_seconds=0)
    results = asyncio.run(checks.run())
    status = overall(results.values())
    if as_json:
        doc = {
            "status": status,
            "service": settings.service_name,
            "version": settings.version,
            "checks": {name: r.as_dict() for name, r in results.items()},
        }
        out.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        out.write(render_table(results.values()))
        out.write(f"{settings.service_name}: {status}\n")
    return 1 if status == FAIL else 0


def render_table(results: Iterable[CheckResult]) -> str:
    """The results as an aligned text table, one line per check."""
    rows: list[tuple[str, ...]] = [_COLUMNS]
    for result in results:
        rows.append(
            (
                result.name,
                result.plugin,
                "yes" if result.critical else "no",
                result.status,
                f"{result.duration_ms:.1f}",
                result.error or "",
            )
        )
    if len(rows) == 1:
        return "no checks configured ([ops_observe.health.checks] is empty)\n"
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]) for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"
