"""Terminal rendering shared by the commands (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from orchestrator.report.table import COLUMNS, Row

console = Console()


def benchmark_table(rows: Sequence[Row], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    # Reference columns only when some trial has a published number to compare with.
    keep = [i for i, c in enumerate(COLUMNS)
            if c not in ("reference (%)", "diff") or any(r.cells()[i] for r in rows)]
    for i in keep:
        t.add_column(COLUMNS[i], justify="left" if COLUMNS[i] in ("network", "GPU") else "right")
    for r in rows:
        cells = r.cells()
        t.add_row(*(cells[i] for i in keep))
    return t
