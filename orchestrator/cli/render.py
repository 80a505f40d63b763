"""Terminal rendering shared by the commands (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from orchestrator.report.table import COLUMNS, Row

console = Console()


def benchmark_table(rows: Sequence[Row], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for c in COLUMNS:
        t.add_column(c, justify="right" if c not in ("network", "GPU") else "left")
    for r in rows:
        t.add_row(*r.cells())
    return t
