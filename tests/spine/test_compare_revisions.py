"""The table of ``benchmarks/compare_revisions.py``: medians, ratio and the paired rounds."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_table_pairs_each_round_of_the_two_trees() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import compare_revisions as cr
    finally:
        sys.path.remove(str(BENCHMARKS))
    base, this = cr.Figures(), cr.Figures()
    # Three rounds; this tree is faster in the first two, slower in the third.
    for before, after in ((5.0, 4.0), (9.0, 8.5), (4.0, 6.0)):
        base.add({"us": {"bare": 10.0, "metrics": 10.0 + before}})
        this.add({"us": {"bare": 10.0, "metrics": 10.0 + after}})
    rows = {line.split(" | ")[0].strip("| "): line for line in cr.table("b", "t", base, this).splitlines()}
    assert "metrics" in rows and "tracing" not in rows  # a configuration not measured has no row
    cells = [cell.strip() for cell in rows["metrics"].strip("|").split("|")]
    assert cells == ["metrics", "5.0 (4.0–9.0)", "6.0 (4.0–8.5)", "1.20", "-0.50", "2/3"]
