"""The table as text: Markdown, CSV, HTML fragment, LaTeX, JSON (pure).

Markdown and LaTeX show the README's cells; CSV and JSON carry the numbers behind them
(percent for accuracy, seconds for time) for spreadsheets and scripts.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.report.table import COLUMNS, NUMERIC_COLUMNS, Row, footnotes

FORMATS = ("md", "csv", "html", "latex", "json")
CSV_FIELDS = (
    "network",
    "model",
    "dataset",
    "state",
    "gpu",
    "mixed_hardware",
    "params",
    "batch_size",
    "epochs",
    "train_time_s",
    "training_time",
    "time_note",
    "accuracy",
    "accuracy_std",
    "n",
    "runs",
    "reference",
    "diff",
    "verdict",
    "reference_params",
    "params_check",
    "progress",
    "error",
    "run_ids",
    "provenance_differs",
    "provenance",
)
_TEXT = ("network", "GPU", "verdict", "params check")  # left-aligned; the rest are numbers
_OPTIONAL = ("n", "reference (%)", "diff", "verdict", "params check")


def visible_columns(rows: Sequence[Row]) -> list[int]:
    """Indexes of COLUMNS to show: comparison columns only when some row fills them."""
    cells = [r.cells() for r in rows]
    keep = []
    for i, c in enumerate(COLUMNS):
        if c == "n":
            show = any(r.runs > 1 for r in rows)
        else:
            show = c not in _OPTIONAL or any(row[i] for row in cells)
        if show:
            keep.append(i)
    return keep


def to_markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(":---" if c in _TEXT else "---:" for c in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |" for r in rows]
    notes = footnotes(rows)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def record(row: Row) -> dict[str, Any]:
    """The numbers behind one row (CSV and JSON)."""
    cells = dict(zip(COLUMNS, row.cells(), strict=True))
    return {
        "network": row.network,
        "model": row.model,
        "dataset": row.dataset,
        "state": row.state,
        "gpu": row.gpu,
        "mixed_hardware": row.mixed_hardware,
        "params": row.params,
        "batch_size": row.batch_size,
        "epochs": row.epochs,
        "train_time_s": _round(row.train_time_s, 1),
        "training_time": cells["training time"],
        "time_note": row.time_note,
        "accuracy": _round(row.accuracy, 3),
        "accuracy_std": _round(row.accuracy_std, 3),
        "n": row.n,
        "runs": row.runs,
        "reference": row.reference,
        "diff": _round(row.diff, 3),
        "verdict": row.verdict,
        "reference_params": row.reference_params,
        "params_check": row.params_check,
        "progress": row.progress,
        "error": row.error,
        "run_ids": list(row.run_ids),
        # versions, commit, GPU stack, determinism, data sha256 ("a | b" where runs differ)
        "provenance_differs": list(row.provenance_differs),
        "provenance": dict(row.provenance),
    }


def to_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        rec = record(row)
        writer.writerow(_csv_value(rec[f]) for f in CSV_FIELDS)
    return out.getvalue()


def to_json(rows: Sequence[Row], job: str = "", extra: Mapping[str, Any] | None = None) -> str:
    doc = {
        "job": job,
        "columns": list(COLUMNS),
        "rows": [record(r) for r in rows],
        "cells": [dict(zip(COLUMNS, r.cells(), strict=True)) for r in rows],
        "footnotes": footnotes(rows),
        **(extra or {}),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _kind(column: str) -> str:
    return "num" if column in NUMERIC_COLUMNS else "text"


def to_html(rows: Sequence[Row], link: Callable[[str], str] | None = None) -> str:
    """A <table> (plus footnotes) to embed in a page; `link(run_id)` makes network links."""
    keep = visible_columns(rows)
    out = ['<table class="orch-table">', "<thead><tr>"]
    out += [f'<th class="{_kind(COLUMNS[i])}">{html.escape(COLUMNS[i])}</th>' for i in keep]
    out.append("</tr></thead>\n<tbody>")
    for row in rows:
        cells = row.cells()
        css = f"state-{row.state.lower()}" + (
            f" verdict-{row.verdict_kind}" if row.verdict_kind else ""
        )
        out.append(f'<tr class="{css}">')
        for i in keep:
            text = html.escape(cells[i])
            if COLUMNS[i] == "network" and link and row.run_ids:
                text = f'<a href="{html.escape(link(row.run_ids[0]))}">{text}</a>'
            kind = _kind(COLUMNS[i])
            # The whole error on hover: the cell shows its last line, cut short.
            tip = (
                f' title="{html.escape(row.error)}"'
                if row.error and COLUMNS[i] == "accuracy (%)"
                else ""
            )
            out.append(f'<td class="{kind} col-{_slug(COLUMNS[i])}"{tip}>{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="footnote">{html.escape(n)}</p>' for n in footnotes(rows)]
    return "\n".join(out) + "\n"


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "σ": r"$\sigma$",
    "†": r"\dag{}",
    "…": r"\ldots{}",
    "→": r"$\to$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(rows: Sequence[Row], caption: str = "") -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    keep = visible_columns(rows)
    align = "".join("l" if COLUMNS[i] in _TEXT else "r" for i in keep)
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(COLUMNS[i]) for i in keep) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        cells = row.cells()
        lines.append(" & ".join(latex_escape(cells[i]) for i in keep) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {latex_escape(n)}" for n in footnotes(rows)]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def render(rows: Sequence[Row], fmt: str, job: str = "") -> str:
    if fmt == "md":
        return to_markdown(rows)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "html":
        return to_html(rows)
    if fmt == "latex":
        return to_latex(rows, caption=f"{job}: benchmark" if job else "")
    if fmt == "json":
        return to_json(rows, job)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def _slug(column: str) -> str:
    """'params check' -> 'params-check', 'accuracy (%)' -> 'accuracy' (CSS classes)."""
    return re.sub(r"[^a-z0-9]+", "-", column.lower()).strip("-")


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return " ".join(v)
    if isinstance(v, dict):
        return "; ".join(f"{k}={x}" for k, x in v.items())
    return str(v)
