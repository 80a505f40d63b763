"""`orch train`'s epoch lines: one line per epoch within 80 columns, one accuracy column when
validation is the test set, the test accuracy on its own line with a held-out set."""

from __future__ import annotations

from orchestrator.cli.train import EpochLines
from orchestrator.protocol import EpochReport


def _epoch(done: int, **kw: float) -> EpochReport:
    base: dict[str, float] = dict(
        loss=12345.678,  # a loss that blew up still fits its column
        accuracy=0.91234,
        val_loss=0.4,
        val_accuracy=0.9,
        lr=1e-05,
        epoch_time_s=12345.6,
        images_per_s=451234.0,
    )
    return EpochReport(epoch=done - 1, epochs_done=done, **{**base, **kw})  # type: ignore[arg-type]


def test_validation_on_the_test_set_is_one_column_said_once() -> None:
    lines = EpochLines(999, val_is_test=True)
    out = lines.of(_epoch(1)) + lines.of(_epoch(999, test_accuracy=0.9, test_loss=0.4))
    assert all(len(line) <= 80 for line in out), out
    note, header, first, last = out  # no second header, no separate test line
    assert "validation set = test set" in note
    assert header.split() == [
        "epoch", "loss", "train", "acc", "test", "loss", "test", "acc", "lr", "time", "img/s",
    ]  # fmt: skip
    assert first.split()[:5] == ["1/999", "1.235e+04", "91.23%", "0.4000", "90.00%"]
    assert last.split()[0] == "999/999"


def test_a_held_out_validation_set_and_the_test_after_the_last_epoch() -> None:
    lines = EpochLines(3, val_is_test=False)
    out = lines.of(_epoch(1)) + lines.of(_epoch(3, test_accuracy=0.875, test_loss=0.5))
    assert "val acc" in out[1] and "test acc" not in out[1]
    assert out[-1] == "test accuracy 87.50% (test loss 0.5000) after 3 epochs"
    assert len(out) == 5


def test_a_trial_restarted_after_its_last_epoch_reports_the_test_alone() -> None:
    lines = EpochLines(3, val_is_test=True)
    out = lines.of(EpochReport(epoch=2, epochs_done=3, test_accuracy=0.5, test_loss=1.0))
    assert out[-1] == "test accuracy 50.00% (test loss 1.0000) after 3 epochs"
    assert len(out) == 3  # note, header, the test line; no row of dashes
