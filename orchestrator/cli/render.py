"""Terminal rendering shared by the commands (rich)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table

from orchestrator.cli.text import safe
from orchestrator.protocol import TrialState
from orchestrator.report.formats import visible_columns
from orchestrator.report.table import COLUMNS, Row, footnotes

console = Console()

_STATE_STYLE: dict[str, str] = {  # TrialState is a StrEnum: Row.state's str keys
    TrialState.RUNNING: "cyan",
    TrialState.PENDING: "dim",
    TrialState.FAILED: "red",
    TrialState.DIVERGED: "red",
    TrialState.PARTIAL: "yellow",
}
_VERDICT_STYLE = {"reproduced": "green", "above": "bold green", "below": "yellow"}
_TEXT = ("network", "GPU", "verdict", "params check")
_NO_WRAP = ("network", "params", "epochs", "accuracy (%)", "n", "diff")
_ACCURACY_MAX = 28  # a failure message longer than this is cut; --format json has it all
_PAD = 3
# The narrow layouts' headers: what a column is still called when room is short.
_SHORT = {
    "batch size": "batch",
    "training time": "time",
    "accuracy (%)": "acc (%)",
    "reference (%)": "ref (%)",
}
# A column whose text is the same in every row says it once, above the table.
_SHARED = ("GPU", "batch size", "epochs")
# What leaves the table, stage by stage, for a line per row under it: least useful first.
# "accuracy (%)" moves only a long cell (a failure, progress); the cell keeps the state.
_MOVABLE = (
    ("verdict", "params check"),
    ("accuracy (%)",),
    ("n", "reference (%)", "diff"),
    ("GPU", "params", "batch size", "epochs"),
)
_SHORT_ACCURACY = len("99.99 ± 0.99")


@dataclass(frozen=True)
class _Layout:
    shown: list[int]  # indexes of COLUMNS in the table
    headers: dict[int, str]
    cells: list[tuple[str, ...]]  # per row, per COLUMNS entry (a moved accuracy: its state)
    under: list[str]  # per row: what left the table, said under it
    shared: str  # the columns every row has alike, said once


def benchmark_table(rows: Sequence[Row], title: str, width: int | None = None) -> Table:
    """The table for a terminal of `width` columns (the console's by default).

    rich crops or cuts ("ResNe…") what does not fit, so the layout is planned here and the
    network names are never cut: natural widths if they fit; else text wraps at word
    boundaries; else, stage by stage, the headers get short, columns alike in every row
    are said once above the table, and the least useful columns move under the table as
    one line per row (`_MOVABLE`). Last, a layout of the network and its cells as text.
    """
    width = width or console.width
    for layout in _layouts(rows):
        widths = _plan(layout, width)
        if widths is not None:
            notes = ([layout.shared] if layout.shared else []) + [
                f"{r.network}: {said}"  # plain text: escaped with the caption
                for r, said in zip(rows, layout.under, strict=True)
                if said
            ]
            return _table(rows, title, layout, widths, notes + footnotes(rows))
    return _compact(rows, title, footnotes(rows))


def _layouts(rows: Sequence[Row]) -> Iterator[_Layout]:
    """The layouts to try, widest first."""
    keep = visible_columns(rows)
    full = [r.cells() for r in rows]
    # A failure longer than the accuracy column is cut there ("…") and said whole under it.
    accuracy = COLUMNS.index("accuracy (%)")
    cut = [c[accuracy] if len(c[accuracy]) > _ACCURACY_MAX else "" for c in full]
    yield _Layout(keep, {i: COLUMNS[i] for i in keep}, full, cut, "")
    headers = {i: _SHORT.get(COLUMNS[i], COLUMNS[i]) for i in keep}
    shared = [
        i
        for i in keep
        if COLUMNS[i] in _SHARED and len(rows) > 1 and len({c[i] for c in full}) == 1
    ]
    said = ", ".join(_said(COLUMNS[i], full[0][i]) for i in shared)
    shown = [i for i in keep if i not in shared]
    moved: list[int] = []
    for stage in ((), *_MOVABLE):
        moved += [i for i in shown if COLUMNS[i] in stage]
        cells, under = [], []
        for r, row in zip(rows, full, strict=True):
            texts = list(row)
            parts = []
            for i in sorted(moved, key=lambda i: (i != accuracy, i)):  # the state first
                if COLUMNS[i] == "accuracy (%)":
                    if len(row[i]) <= _SHORT_ACCURACY:
                        continue  # a number stays; only a long text moves
                    texts[i] = r.state.lower()
                if row[i]:
                    parts.append(_said(COLUMNS[i], row[i]))
            if accuracy not in moved and len(row[accuracy]) > _ACCURACY_MAX:
                parts.insert(0, row[accuracy])
            cells.append(tuple(texts))
            under.append("; ".join(parts))
        table = [i for i in shown if i not in moved or i == accuracy]
        yield _Layout(table, headers, cells, under, f"all rows: {said}" if said else "")


def _compact(rows: Sequence[Row], title: str, notes: list[str]) -> Table:
    """A very narrow terminal: each network on a line of its own (whole while it fits the
    width; folded, never cut, beyond), its cells as indented, wrapping text under it."""
    t = Table(
        title=safe(title),
        title_justify="left",
        caption="\n".join(safe(n) for n in notes) or None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    t.add_column("network: result", overflow="fold")
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
        result = safe(" · ".join(p for p in parts if p))
        t.add_row(Group(safe(r.network), Padding(result, (0, 0, 0, 4))))
    return t


def _said(col: str, text: str) -> str:
    return {
        "n": f"n={text}",
        "reference (%)": f"reference {text}",
        "diff": f"diff {text}",
        "GPU": text,
        "params": f"{text} params",
        "batch size": f"batch size {text}",
        "epochs": f"{text} epochs",
        "params check": "params ok" if text == "ok" else text,
    }.get(col, text)


def _plan(layout: _Layout, width: int) -> dict[int, int | None] | None:
    """Column widths that fit `width`, or None; {i: None} = rich's natural width."""
    natural, least = {}, {}
    for i in layout.shown:
        col = COLUMNS[i]
        texts = [layout.headers[i], *(c[i] for c in layout.cells)]
        full = max(len(t) for t in texts)
        natural[i] = min(full, _ACCURACY_MAX) if col == "accuracy (%)" else full
        words = max(len(w) for t in texts for w in t.split() or [""])
        least[i] = natural[i] if col in _NO_WRAP else words
        if col in ("GPU", "training time"):  # break "A + B" between GPUs, never inside one
            least[i] = max(len(p.strip()) + 2 for t in texts for p in t.split(" + "))
    # Edges and padding: one blank edge each side, 1 + 1 padding and a divider per column.
    room = width - _PAD * len(layout.shown) - 1
    if sum(natural.values()) <= room:
        return dict.fromkeys(layout.shown)
    if sum(least.values()) > room:
        return None
    # Spare room goes to the columns that need least to stop wrapping, first.
    widths: dict[int, int | None] = {}
    spare = room - sum(least.values())
    for i in sorted(layout.shown, key=lambda i: natural[i] - least[i]):
        extra = min(spare, natural[i] - least[i])
        widths[i] = least[i] + extra
        spare -= extra
    return widths


def _table(
    rows: Sequence[Row],
    title: str,
    layout: _Layout,
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
    for i in layout.shown:
        col = COLUMNS[i]
        t.add_column(
            safe(layout.headers[i]),
            justify="left" if col in _TEXT else "right",
            no_wrap=col in _NO_WRAP,
            overflow="ellipsis" if col == "accuracy (%)" else "fold",
            max_width=_ACCURACY_MAX if col == "accuracy (%)" else None,
            width=widths.get(i),
        )
    for r, cells in zip(rows, layout.cells, strict=True):
        t.add_row(*(_styled(r, COLUMNS[i], cells[i]) for i in layout.shown))
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
