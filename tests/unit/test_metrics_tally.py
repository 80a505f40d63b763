"""MetricsSink keeps the job's state counts and remaining work up to date at each event
(tracking/metrics.py), instead of recounting the whole grid per event: after every event
of a random run they equal the recount's (the formula the sink used before)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.protocol import EndKind, EpochReport, FailureClass, TrialEnd
from orchestrator.spec.load import load_job
from orchestrator.tracking.metrics import OPEN, STATES, MetricsSink

JOB = """
[job]
name = "tally"
[defaults]
dataset = "digits"
model = "lenet5"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
[[grid]]
name = "e{epochs}"
[grid.axes]
epochs = [3, 5, 9]
"""


def recount(sink: MetricsSink) -> tuple[Counter[str], float | None]:
    if not sink.epoch_time_s:
        return Counter(sink.state.values()), None
    mean = sum(sink.epoch_time_s.values()) / len(sink.epoch_time_s)
    work = sum(
        (t.epochs - sink.epochs_done[k]) * sink.epoch_time_s.get(k, mean)
        for k, t in sink.trials.items()
        if sink.state[k] in OPEN
    )
    running = sum(1 for s in sink.state.values() if s == "RUNNING")
    return Counter(sink.state.values()), work / max(1, running)


@pytest.mark.parametrize("seed", range(5))
def test_tallies_equal_a_recount_after_every_event(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "tally.toml"
    path.write_text(JOB)
    job = load_job(path)
    rng = random.Random(seed)
    keys = [t.key for t in job.trials]
    sink = MetricsSink(job, finished=rng.sample(keys, 3))
    for _ in range(300):
        key = rng.choice(keys)
        epochs = sink.trials[key].epochs
        event = rng.choice(["start", "epoch", "epoch", "retry", "finish", "end"])
        if event == "start":
            sink.trial_started(key)
        elif event == "epoch":
            done = rng.randint(1, epochs)
            sink.trial_result(
                key, EpochReport(epoch=done - 1, epochs_done=done, epoch_time_s=rng.uniform(1, 9))
            )
        elif event == "retry":
            sink.trial_failed(key, "node lost", will_retry=True, failure_class="node_lost")
        elif event == "finish":
            sink.trial_completed(key, None)
        else:
            cls = rng.choice([FailureClass.CANCELLED, FailureClass.DIVERGED])
            sink.trial_completed(key, TrialEnd(EndKind.STOPPED, cls, "ended"))
        counts, eta = recount(sink)
        assert {s: sink._counts[s] for s in STATES} == {s: counts[s] for s in STATES}
        if eta is None:
            assert sink.job_eta_s() is None
        else:
            assert sink.job_eta_s() == pytest.approx(eta, rel=1e-9, abs=1e-9)
