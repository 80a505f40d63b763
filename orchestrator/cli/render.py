"""Terminal rendering shared by the commands (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from orchestrator.cli.text import safe
from orchestrator.protocol import TrialState
from orchestrator.report.formats import visible_columns
from orchestrator.report.table import COLUMNS, Row, footnotes

console = Console()

_STATE_STYLE = {
    TrialState.RUNNING: "cyan",
    TrialState.PENDING: "dim",
    TrialState.FAILED: "red",
    TrialState.DIVERGED: "red",
    TrialState.PARTIAL: "yellow",
}
_VERDICT_STYLE = {"reproduced": "green", "above": "bold green", "below": "yellow"}
_TEXT = ("network", "GPU", "verdict", "params check")
_NO_WRAP = ("network", "params", "epochs", "accuracy (%)", "n", "diff")
# Listed under the table, stage by stage, when the terminal is too narrow for them.
_MOVABLE = (("verdict", "params check"), ("n", "reference (%)", "diff"))
_ACCURACY_MAX = 28  # a failure message longer than this is cut; --format json has it all
_PAD = 3


def benchmark_table(rows: Sequence[Row], title: str, width: int | None = None) -> Table:
    """The table for a terminal of `width` columns (the console's by default).

    rich crops the last columns of a table that does not fit, so the widths are planned
    here: natural widths if they fit; else text wraps at word boundaries; else the
    comparison columns move under the table, one line per row (verdicts first).
    """
    width = width or console.width
    keep = visible_columns(rows)
    cells = [r.cells() for r in rows]
    moved: list[int] = []
    for stage in ((), *_MOVABLE):
        moved += [i for i in keep if COLUMNS[i] in stage]
        shown = [i for i in keep if i not in moved]
        widths = _plan(cells, shown, width)
        if widths is not None:
            break
    else:
        return _compact(rows, title, footnotes(rows))
    lines = []
    for r, row_cells in zip(rows, cells, strict=True):
        said = "; ".join(_said(COLUMNS[i], row_cells[i]) for i in moved if row_cells[i])
        if said:
            lines.append(f"{r.network}: {said}")  # plain text: escaped with the caption
    return _table(rows, title, shown, widths or {}, lines + footnotes(rows))


def _compact(rows: Sequence[Row], title: str, notes: list[str]) -> Table:
    """A very narrow terminal: the network, then the row's cells as wrapping text."""
    t = Table(
        title=safe(title),
        title_justify="left",
        caption="\n".join(safe(n) for n in notes) or None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    t.add_column("network", no_wrap=True)
    t.add_column("result")
    for r in rows:
        cells = dict(zip(COLUMNS, r.cells(), strict=True))
        parts = [
            cells["accuracy (%)"],
            cells["verdict"],
            cells["GPU"],
            cells["params"],
            f"bs {cells['batch size']}",
            f"{cells['epochs']} epochs",
            cells["training time"],
        ]
        if cells["reference (%)"]:
            parts.insert(1, f"reference {cells['reference (%)']} ({cells['diff'] or '-'})")
        if cells["params check"] not in ("", "ok"):
            parts.append(cells["params check"])
        t.add_row(safe(r.network), safe(" · ".join(p for p in parts if p)))
    return t


def _said(col: str, text: str) -> str:
    return {"n": f"n={text}", "reference (%)": f"reference {text}", "diff": f"diff {text}"}.get(
        col, text
    )


def _plan(
    cells: Sequence[tuple[str, ...]], keep: list[int], width: int
) -> dict[int, int | None] | None:
    """Column widths that fit `width`, or None; {i: None} = rich's natural width."""
    natural, least = {}, {}
    for i in keep:
        col = COLUMNS[i]
        texts = [col, *(c[i] for c in cells)]
        full = max(len(t) for t in texts)
        natural[i] = min(full, _ACCURACY_MAX) if col == "accuracy (%)" else full
        words = max(len(w) for t in texts for w in t.split() or [""])
        least[i] = natural[i] if col in _NO_WRAP else words
        if col in ("GPU", "training time"):  # break "A + B" between GPUs, never inside one
            least[i] = max(len(p.strip()) + 2 for t in texts for p in t.split(" + "))
    # Edges and padding: one blank edge each side, 1 + 1 padding and a divider per column.
    room = width - _PAD * len(keep) - 1
    if sum(natural.values()) <= room:
        return dict.fromkeys(keep)
    if sum(least.values()) > room:
        return None
    # Spare room goes to the columns that need least to stop wrapping, first.
    widths, spare = dict(least), room - sum(least.values())
    for i in sorted(keep, key=lambda i: natural[i] - least[i]):
        extra = min(spare, natural[i] - least[i])
        widths[i] += extra
        spare -= extra
    return widths


def _table(
    rows: Sequence[Row],
    title: str,
    keep: list[int],
    widths: dict[int, int | None],
    notes: list[str],
) -> Table:
    t = Table(
        title=safe(title),
        title_justify="left",
        caption="\n".join(safe(n) for n in notes) or None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for i in keep:
        col = COLUMNS[i]
        t.add_column(
            col,
            justify="left" if col in _TEXT else "right",
            no_wrap=col in _NO_WRAP,
            overflow="ellipsis" if col == "accuracy (%)" else "fold",
            max_width=_ACCURACY_MAX if col == "accuracy (%)" else None,
            width=widths.get(i),
        )
    for r in rows:
        cells = r.cells()
        t.add_row(*(_styled(r, COLUMNS[i], cells[i]) for i in keep))
    return t


def _styled(r: Row, col: str, text: str) -> str:
    style = None
    if col == "accuracy (%)" and not r.n:
        style = _STATE_STYLE.get(r.state)
    elif col == "verdict":
        style = _VERDICT_STYLE.get(r.verdict_kind)
    elif col == "params check" and text not in ("", "ok"):
        style = "yellow"
    return f"[{style}]{safe(text)}[/]" if style else safe(text)
