"""`orch report`: one self-contained HTML page (table, plots, learning curves, run links).

The page embeds its figures as base64 PNG and its CSS inline, so it can be mailed or
attached as it is; the PNGs are also written next to it for slides and papers. Templates
(Jinja2) ship inside the package, orchestrator/report/templates/, so a wheel install works.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.protocol import TrialState
from orchestrator.report.formats import to_html
from orchestrator.report.records import RunRecord
from orchestrator.report.table import PARAMS_TOLERANCE, Row

TEMPLATE = "report.html.j2"
FIGURES = (
    ("accuracy_vs_params", "Accuracy vs. parameters"),
    ("accuracy_vs_time", "Accuracy vs. training time"),
    ("learning_curves", "Learning curves (val_accuracy per epoch)"),
)


@dataclass(frozen=True)
class Settings:
    """How the table was built; shown on the page so a reader can judge the verdicts."""

    noise_pp: float
    sigmas: float
    normalize_to: str | None = None


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent / "templates"
    if not (here / TEMPLATE).is_file():
        raise OrchestratorError(
            f"report template {TEMPLATE} not found in {here}: the orch install is incomplete. "
            "Reinstall it (pip install --force-reinstall orch)."
        )
    return here


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's address of a run: absolute for an http(s) server, else relative
    (append it to the address of `mlflow ui` started on the same store)."""
    fragment = f"#/experiments/{experiment_id}/runs/{run_id}"
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/") + "/" + fragment
    return fragment


def safe_name(job: str) -> str:
    """A job name as a directory name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", job).strip("._") or "job"


def write_report(
    job: str,
    rows: Sequence[Row],
    records: Sequence[RunRecord],
    curves: Mapping[str, Sequence[tuple[int, float]]],
    *,
    tracking_uri: str,
    out_dir: Path,
    settings: Settings,
) -> Path:
    """Render the plots and the page into out_dir; returns the HTML file."""
    from orchestrator.report import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {
        "accuracy_vs_params": plots.accuracy_scatter(rows, "params"),
        "accuracy_vs_time": plots.accuracy_scatter(rows, "time"),
        "learning_curves": plots.learning_curves(rows, curves),
    }
    for name, data in pngs.items():
        (out_dir / f"{name}.png").write_bytes(data)
    html = render_page(job, rows, records, pngs, tracking_uri=tracking_uri, settings=settings)
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def render_page(
    job: str,
    rows: Sequence[Row],
    records: Sequence[RunRecord],
    pngs: Mapping[str, bytes],
    *,
    tracking_uri: str,
    settings: Settings,
    now: dt.datetime | None = None,
) -> str:
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    experiments = {r.run_id: r.experiment_id for r in records}

    def link(run_id: str) -> str:
        return run_link(tracking_uri, experiments.get(run_id, "0"), run_id)

    figures = [
        {
            "name": name,
            "title": title,
            "file": f"{name}.png",
            "data": base64.b64encode(pngs[name]).decode("ascii"),
        }
        for name, title in FIGURES
        if name in pngs
    ]
    return env.get_template(TEMPLATE).render(
        job=job,
        rows=rows,
        table=Markup(to_html(rows, link)),
        figures=figures,
        summary=_summary(rows),
        runs=_runs(rows, records, link),
        provenance=provenance_table(rows),
        tracking_uri=tracking_uri,
        remote=tracking_uri.startswith(("http://", "https://")),
        settings=settings,
        params_tolerance=f"{PARAMS_TOLERANCE:.0%}",
        generated=(now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        versions=_versions(),
    )


def _summary(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The counts shown as cards above the table."""

    def count(pred: Any) -> int:
        return sum(1 for r in rows if pred(r))

    cards = [
        {"label": "grid cells", "value": len(rows), "kind": "total"},
        {"label": "runs", "value": sum(r.runs for r in rows), "kind": "total"},
        {
            "label": "reproduced",
            "value": count(lambda r: r.verdict_kind == "reproduced"),
            "kind": "reproduced",
        },
        {"label": "above", "value": count(lambda r: r.verdict_kind == "above"), "kind": "above"},
        {"label": "below", "value": count(lambda r: r.verdict_kind == "below"), "kind": "below"},
        {
            "label": "running",
            "value": count(lambda r: r.state in (TrialState.RUNNING, TrialState.PENDING)),
            "kind": "running",
        },
        {
            "label": "failed",
            "value": count(
                lambda r: (
                    r.state in (TrialState.FAILED, TrialState.DIVERGED)
                    or "failed" in r.progress
                    or "diverged" in r.progress
                )
            ),
            "kind": "failed",
        },
    ]
    if not any(r.reference is not None for r in rows):  # nothing to compare with: no verdicts
        cards = [c for c in cards if c["kind"] not in ("reproduced", "above", "below")]
    return cards


def provenance_table(rows: Sequence[Row]) -> dict[str, Any]:
    """Columns (provenance keys any cell has) and per cell its values, flagged where the
    cell's runs differ."""
    from orchestrator.tracking.provenance import KEYS, LABELS, short

    present = {k for r in rows for k in r.provenance}
    keys = [k for k in KEYS if k in present] + sorted(present - set(KEYS))
    return {
        "columns": [LABELS.get(k, k) for k in keys],
        "rows": [
            {
                "network": r.network,
                "differs": bool(r.provenance_differs),
                "cells": [
                    {
                        "text": short(k, r.provenance.get(k, "-")),
                        "differs": k in r.provenance_differs,
                    }
                    for k in keys
                ],
            }
            for r in rows
        ],
    }


def _runs(rows: Sequence[Row], records: Sequence[RunRecord], link: Any) -> list[dict[str, Any]]:
    by_id = {r.run_id: r for r in records}
    out = []
    for row in rows:
        for run_id in row.run_ids:
            r = by_id.get(run_id)
            if r is None:
                continue
            acc = "-" if r.test_accuracy is None else f"{100 * r.test_accuracy:.2f}"
            out.append(
                {
                    "network": row.network,
                    "name": r.name,
                    "seed": r.seed,
                    "state": r.state,
                    "gpu": r.gpu or "-",
                    "accuracy": acc,
                    "epochs": f"{r.epochs_done}/{r.epochs or '?'}",
                    "run_id": run_id,
                    "link": link(run_id),
                }
            )
    return out


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("orch", "mlflow"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)
