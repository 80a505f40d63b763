"""build_table: RunRecords -> the seed README's benchmark table (pure; no MLflow here).

Columns as in cifar-10-cnn's README: network | GPU | params | batch size | epochs |
training time | accuracy (%), with the published accuracy and the difference beside ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.report.records import RunRecord

COLUMNS = ("network", "GPU", "params", "batch size", "epochs", "training time",
           "accuracy (%)", "reference (%)", "diff")


@dataclass(frozen=True)
class Row:
    network: str
    gpu: str
    params: str
    batch_size: str
    epochs: str
    training_time: str
    accuracy: str
    reference: str
    diff: str

    def cells(self) -> tuple[str, ...]:
        return (self.network, self.gpu, self.params, self.batch_size, self.epochs,
                self.training_time, self.accuracy, self.reference, self.diff)


def build_table(records: Sequence[RunRecord]) -> list[Row]:
    """One row per trial, in the order the records come (the job file's order)."""
    return [_row(r) for r in records]


def _row(r: RunRecord) -> Row:
    ref_acc = _float(r.reference.get("accuracy"))
    acc = r.test_accuracy * 100 if r.test_accuracy is not None else None
    if r.state == "FINISHED" and acc is not None:
        accuracy = f"{acc:.2f}"
    elif r.state in ("FAILED", "DIVERGED"):
        accuracy = f"{r.state.lower()}: {r.error or 'see MLflow'}"[:60]
    else:
        accuracy = f"running {r.epochs_done}/{r.epochs or '?'}"
    diff = f"{acc - ref_acc:+.2f}" if acc is not None and ref_acc is not None else ""
    return Row(
        network=r.name,
        gpu=r.gpu or "-",
        params=format_params(r.params),
        batch_size=str(r.batch_size or "-"),
        epochs=str(r.epochs or "-"),
        training_time=format_duration(r.train_time_s),
        accuracy=accuracy,
        reference=f"{ref_acc:.2f}" if ref_acc is not None else "",
        diff=diff,
    )


def format_params(n: int | None) -> str:
    """62006 -> '62k', 274442 -> '0.27M', 36497136 -> '36.5M' (the README's style)."""
    if n is None:
        return "-"
    if n < 100_000:
        return f"{n / 1000:.0f}k" if n >= 1000 else str(n)
    return f"{n / 1e6:.2f}M" if n < 10_000_000 else f"{n / 1e6:.1f}M"


def format_duration(seconds: float | None) -> str:
    """Like the README: '44 min', '1h40', '10h22'; seconds under a minute: '38 s'."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60}h{minutes % 60:02d}"


def to_markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None
