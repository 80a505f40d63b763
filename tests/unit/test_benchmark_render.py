"""The benchmark table in a terminal (`orch table`, the end of `orch submit`): it fits the
width, every network name stays whole on one line (never "ResNe…"), and what leaves the
table at a narrow width is still said, under it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator.cli.render import benchmark_table
from orchestrator.report.records import RunRecord
from orchestrator.report.table import Row, build_table

# Names that share long prefixes: only their ends tell them apart.
NAMES = (
    "DenseNet-BC (L=40, k=12), C10+ lr 0.05 cosine",
    "DenseNet-BC (L=40, k=12), C10+ lr 0.02 cosine",
    "Residual-Network20 (preact), lr 0.05",
    "Residual-Network20 (preact), lr 0.02",
)
OOM = "OOM: out of memory on GTX 1080 Ti while building the graph"


def _rows() -> list[Row]:
    states = ("FINISHED", "FINISHED", "RUNNING", "FAILED")
    return build_table(
        [
            RunRecord(
                run_id=f"r{i}",
                trial_key=f"k{i}",
                name=name,
                model="densenet" if i < 2 else "resnet20",
                state=state,
                gpu="CPU",
                batch_size=64,
                epochs=1,
                epochs_done=1 if state == "FINISHED" else 0,
                params=176122 if i < 2 else 272474,
                train_time_s=12.0 + i,
                test_accuracy=0.9123 if state == "FINISHED" else None,
                error=OOM if state == "FAILED" else None,
                reference={"accuracy": "91.50", "params": "176000"} if i == 0 else {},
                position=i,
            )
            for i, (name, state) in enumerate(zip(NAMES, states, strict=True))
        ]
    )


def _screen(rows: list[Row], width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(
        benchmark_table(rows, "names: benchmark (from MLflow)", width=width)
    )
    return [line.rstrip() for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_names_whole_and_within_the_width(width: int) -> None:
    lines = _screen(_rows(), width)
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    body = [line for line in lines if line.startswith("  ")]  # the table's rows
    for name in NAMES:  # whole, on one line of the table itself
        assert any(name in line for line in body), f"{name!r} cut at {width}:\n{text}"
    for cut in ("ResNe…", "Dense…", "FINISH…", "runn…", "fail…"):
        assert cut not in text
    # What left the table (or was cut in it) is said under it: the failure in full, the
    # reference and the verdict.
    assert OOM in " ".join(text.split())
    assert "91.50" in text and "reproduced" in text


def test_a_wide_terminal_keeps_every_column() -> None:
    header = next(line for line in _screen(_rows(), 200) if "network" in line)
    for col in ("GPU", "params", "batch size", "epochs", "training time", "accuracy (%)"):
        assert col in header
    assert "reference (%)" in header and "verdict" in header


def test_at_80_columns_columns_go_by_priority() -> None:
    lines = _screen(_rows(), 80)
    header = next(line for line in lines if "network" in line).split()
    # The accuracy and the time stay; the same GPU, batch size and epochs in every row
    # are said once; the comparison moves under the table, row by row.
    assert header == ["network", "time", "acc", "(%)"]
    text = "\n".join(lines)
    assert "all rows: CPU, batch size 64, 1 epochs" in text
    failed = next(line for line in lines if line.startswith(f"  {NAMES[3]}"))
    assert failed.split()[-1] == "failed"  # the state in the cell, the message below
    said = f"{NAMES[0]}: 0.18M params; reference 91.50; diff -0.27; reproduced"
    assert said in " ".join(text.split())


def test_short_names_at_80_columns_keep_the_numbers_in_the_table() -> None:
    rows = [r.__class__(**{**r.__dict__, "network": f"net-{i}"}) for i, r in enumerate(_rows())]
    header = next(line for line in _screen(rows, 80) if "network" in line)
    for col in ("params", "time", "acc (%)", "ref (%)", "diff"):
        assert col in header
