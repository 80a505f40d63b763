"""`orch status`'s trial table on a narrow terminal: names and states whole, columns
dropped by priority, one accuracy column when validation is the test set, and errors that
no longer fit said whole under the table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from rich.console import Console

from orchestrator.cli.status import job_table
from orchestrator.ledger import JobView, TrialView

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NAMES = [
    "LeNet-5 (C10+ recipe, cosine schedule), lr 0.05",
    "LeNet-5 (C10+ recipe, cosine schedule), lr 0.02",
    "DenseNet-BC-100 (k=12), seed 1",
]
ERROR = "ResourceExhaustedError: OOM when allocating tensor with shape [128,64,32,32]"


def trial(name: str, state: str, acc: float | None, test: float | None, error: str = ""):
    return TrialView(
        job="grid", key=name[-4:], name=name, model="lenet5", state=state, epochs_done=3,
        epochs_total=10, last_accuracy=acc, test_accuracy=test, node="a1b2c3d4e5",
        gpu="GTX 1080 Ti", attempts=1, error=error or None, mlflow_run_id=None,
        updated_at=NOW,
    )  # fmt: skip


def job(*trials: TrialView) -> JobView:
    return JobView("grid", "jobs/grid.toml", "grid", "RUNNING", NOW, NOW, None, trials)


def render(view: JobView, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(job_table(view, width))
    return console.export_text().splitlines()


def test_narrow_terminal_keeps_names_and_states_whole() -> None:
    view = job(
        trial(NAMES[0], "FINISHED", 0.71, 0.71),
        trial(NAMES[1], "RUNNING", 0.52, None),
        trial(NAMES[2], "FAILED", 0.3, 0.3, error=ERROR),
    )
    lines = render(view, 80)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "…" not in text
    for name, state in zip(NAMES, ("FINISHED", "RUNNING", "FAILED"), strict=True):
        assert any(name in line and state in line for line in lines), (name, text)
    header = next(line for line in lines if "trial" in line and "state" in line)
    assert "acc" in header and "val acc" not in header and "test acc" not in header
    assert "validation was the test set" in text
    # the error did not fit: said whole under the table, with its trial's name
    assert f"{NAMES[2]}: {ERROR}" in " ".join(line.strip() for line in lines)
    assert not any("OOM" in line and "│" in line for line in lines)


def test_wide_terminal_shows_every_column_and_both_accuracies_when_they_differ() -> None:
    held_out = job(
        trial(NAMES[0], "FINISHED", 0.74, 0.71), trial(NAMES[1], "FAILED", 0.5, None, ERROR)
    )
    lines = render(held_out, 240)
    header = next(line for line in lines if "trial" in line and "state" in line)
    for col in ("model", "node", "GPU", "epoch", "val acc", "test acc", "ETA", "tries", "error"):
        assert col in header, col
    assert any(ERROR in line and "│" in line for line in lines)
    assert "validation was the test set" not in "\n".join(lines)
    narrow = render(held_out, 80)
    header = next(line for line in narrow if "trial" in line and "state" in line)
    assert "val acc" in header and "node" not in header
    assert max(len(line) for line in narrow) <= 80


def test_no_error_column_without_errors() -> None:
    lines = render(job(replace(trial(NAMES[0], "RUNNING", None, None))), 240)
    header = next(line for line in lines if "trial" in line and "state" in line)
    assert "error" not in header
