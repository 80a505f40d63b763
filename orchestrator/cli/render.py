"""Terminal rendering shared by the commands (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from orchestrator.report.formats import visible_columns
from orchestrator.report.table import COLUMNS, Row, footnotes

console = Console()

_STATE_STYLE = {"RUNNING": "cyan", "PENDING": "dim", "FAILED": "red", "DIVERGED": "red",
                "PARTIAL": "yellow"}
_VERDICT_STYLE = {"reproduced": "green", "above": "bold green", "below": "yellow"}


def benchmark_table(rows: Sequence[Row], title: str) -> Table:
    notes = footnotes(rows)
    t = Table(title=title, title_justify="left", caption="\n".join(notes) or None,
              caption_justify="left")
    # Comparison columns only when some row has something to show in them.
    keep = visible_columns(rows)
    for i in keep:
        t.add_column(COLUMNS[i], justify="left" if COLUMNS[i] in (
            "network", "GPU", "verdict", "params check") else "right")
    for r in rows:
        cells = r.cells()
        styled = []
        for i in keep:
            text, col = cells[i], COLUMNS[i]
            style = None
            if col == "accuracy (%)" and not r.n:
                style = _STATE_STYLE.get(r.state)
            elif col == "verdict":
                style = _VERDICT_STYLE.get(r.verdict_kind)
            elif col == "params check" and text not in ("", "ok"):
                style = "yellow"
            styled.append(f"[{style}]{_escape(text)}[/]" if style else _escape(text))
        t.add_row(*styled)
    return t


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
