"""The live table fits the terminal without cutting trial names: columns go instead,
least useful first; one accuracy column when validation is the test set; nothing drawn
before the first trial event (so an early error stands alone)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator.cli.live import LiveDisplay
from orchestrator.protocol import EpochReport
from orchestrator.spec.load import load_job, parse_job
from tests.conftest import ROOT


def _screen(display: LiveDisplay, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(display._render(width))
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 200])
def test_every_trial_name_whole_and_the_table_within_the_width(width: int) -> None:
    job = load_job(ROOT / "jobs" / "full_table.toml")
    d = LiveDisplay(job, skipped=set())
    first, last = job.trials[0].key, job.trials[-1].key
    d.trial_started(first)
    d.trial_result(
        first, EpochReport(epoch=2, epochs_done=3, loss=1.234, val_accuracy=0.5, train_time_s=99)
    )
    d.trial_failed(last, "OOM: out of memory on GTX 1080 Ti", will_retry=True)
    lines = _screen(d, width)
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    for t in job.trials:  # each name whole, on one line (no "ResNe…")
        assert t.name in text, t.name
    assert "…" not in text
    header = next(line for line in lines if "trial" in line and "state" in line)
    assert "acc" in header and "val acc" not in header and "test acc" not in header
    assert "validation set = test set" in text
    assert "OOM: out of memory" in text  # the note, in its column or under the table
    if width >= 200:
        for col in ("model", "loss", "compute", "note"):
            assert col in header
    else:
        assert "note" not in header


def test_two_accuracy_columns_with_a_held_out_validation_set() -> None:
    job = parse_job(
        {
            "job": {"name": "v"},
            "trial": [{"name": "a", "model": "lenet5", "dataset": "digits", "epochs": 2,
                       "data": {"validation_size": 0.1}}],
        },
        "v.toml",
    )  # fmt: skip
    lines = _screen(LiveDisplay(job, skipped=set()), 120)
    header = next(line for line in lines if "state" in line)
    assert "val acc" in header and "test acc" in header
    assert "validation set = test set" not in "\n".join(lines)


def test_nothing_is_drawn_before_the_first_trial_event() -> None:
    job = load_job(ROOT / "jobs" / "quickstart.toml")
    d = LiveDisplay(job, skipped=set())
    with d:  # e.g. submit's feasibility check raises here
        pass
    assert not d.started_live
    d.trial_started(job.trials[0].key)
    assert d.started_live
    d.__exit__(None, None, None)


def test_a_large_grid_shows_its_telling_rows_and_counts_the_rest() -> None:
    """500 trials: the running and the failed one are drawn, and the next to run; the
    rest are counted, not drawn (every row at every event cost seconds at 10,000)."""
    from orchestrator.cli.live import MAX_ROWS

    job = parse_job(
        {
            "job": {"name": "big"},
            "defaults": {"seeds": list(range(500))},
            "trial": [{"name": "t", "model": "lenet5", "dataset": "digits", "epochs": 1}],
        },
        "big.toml",
    )
    d = LiveDisplay(job, skipped={job.trials[0].key})
    running, failed = job.trials[300], job.trials[400]
    d.trial_started(running.key)
    d.trial_failed(failed.key, "DatasetError: damaged archive", will_retry=False)
    lines = _screen(d, 200)
    drawn = {line.split()[0] for line in lines if line.strip()}
    assert {running.name, failed.name, job.trials[1].name} <= drawn  # job.trials[1]: next
    assert job.trials[0].name not in drawn  # skipped: counted only
    assert job.trials[450].name not in drawn
    assert len(drawn & {t.name for t in job.trials}) == MAX_ROWS
    words = " ".join(" ".join(lines).split())
    assert "damaged archive" in words
    assert f"{MAX_ROWS} of 500 trials shown" in words
    assert "1 failed" in words and "1 running" in words and "1 skipped" in words


def test_every_trial_state_renders() -> None:
    """A cancelled trial once made rich raise (an empty style tag), inside Tune's
    on_trial_complete: Tune then took the cancelled trial for a failed one and ran it
    again, twice."""
    from orchestrator.protocol import EndKind, FailureClass, TrialEnd, TrialState

    job = load_job(ROOT / "jobs" / "quickstart.toml")
    d = LiveDisplay(job, skipped=set())
    key = job.trials[0].key
    end = TrialEnd(EndKind.STOPPED, FailureClass.CANCELLED, "cancelled by me@host")
    d.trial_completed(key, end)
    assert d.rows[key]["state"] == TrialState.CANCELLED
    for state in TrialState:
        d.rows[key]["state"] = state
        assert str(state) in "\n".join(_screen(d, 200))
