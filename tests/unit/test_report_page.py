"""The report page and its plots, from RunRecords (no MLflow, no browser)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from orchestrator.report import plots
from orchestrator.report.page import Settings, render_page, run_link, safe_name, write_report
from orchestrator.report.records import RunRecord
from orchestrator.report.table import build_table
from tests.unit.test_table import rec as table_rec

PNG = b"\x89PNG\r\n\x1a\n"


def rec(**kw) -> RunRecord:
    """test_table's record, with what the page adds: an MLflow run id and experiment."""
    base = {
        "run_id": "a" * 32,
        "reference": {"accuracy": "91.82", "params": "274442", "time": "44 min"},
        "experiment_id": "7",
        "dataset": "",
    }
    return table_rec(**{**base, **kw})


RECORDS = [
    rec(),
    rec(
        run_id="b" * 32,
        name="<VGG19>",
        state="FAILED",
        test_accuracy=None,
        error="ValueError: <script>alert(1)</script>",
        start_time_ms=1,
    ),
]


def test_run_links() -> None:
    assert (
        run_link("http://mlflow:5000/", "3", "r1") == "http://mlflow:5000/#/experiments/3/runs/r1"
    )
    assert run_link("https://x.org", "3", "r1") == "https://x.org/#/experiments/3/runs/r1"
    assert run_link("sqlite:////tmp/m.db", "3", "r1") == "#/experiments/3/runs/r1"
    assert safe_name("cifar/10 grid") == "cifar_10_grid" and safe_name("..") == "job"


def test_page_escapes_and_links() -> None:
    rows = build_table(RECORDS)
    html = render_page(
        "demo <job>",
        rows,
        RECORDS,
        {"accuracy_vs_params": PNG},
        tracking_uri="http://mlflow.example:5000",
        settings=Settings(0.3, 2.0, "GTX 1080 Ti"),
        now=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
    )
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "demo &lt;job&gt;" in html and "&lt;VGG19&gt;" in html
    assert f'href="http://mlflow.example:5000/#/experiments/7/runs/{"a" * 32}"' in html
    assert "2026-01-02 03:04 UTC" in html and "Normalised to GTX 1080 Ti" in html
    assert html.count("data:image/png;base64,") == 1
    assert "mlflow ui --backend-store-uri" not in html  # a server has its own UI


def test_write_report(tmp_path: Path) -> None:
    rows = build_table(RECORDS)
    curves = {"a" * 32: [(0, 0.5), (1, 0.8), (2, 0.9)]}
    path = write_report(
        "demo",
        rows,
        RECORDS,
        curves,
        tracking_uri="sqlite:///x.db",
        out_dir=tmp_path / "out",
        settings=Settings(0.3, 2.0),
    )
    assert path == tmp_path / "out" / "index.html"
    for name in ("accuracy_vs_params", "accuracy_vs_time", "learning_curves"):
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:8] == PNG
    html = path.read_text()
    assert "mlflow ui --backend-store-uri sqlite:///x.db" in html
    assert 'class="orch-table"' in html and "failed: ValueError" in html


def test_plots_without_finished_runs() -> None:
    rows = build_table([rec(state="RUNNING", test_accuracy=None, epochs_done=3)])
    assert plots.accuracy_scatter(rows, "params")[:8] == PNG
    assert plots.learning_curves(rows, {})[:8] == PNG
