"""The ledger on SQLite and on the real PostgreSQL server (127.0.0.1:5432, db `test`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.spec.load import parse_job

RAW = {
    "job": {"name": "j"},
    "defaults": {"dataset": "digits", "epochs": 3},
    "trial": [{"name": "a", "model": "lenet5"}, {"name": "b", "model": "resnet20"}],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'orch.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    ledger = Ledger(url)
    yield ledger
    ledger.engine.dispose()


def test_register_progress_finish(ledger: Ledger) -> None:
    job = parse_job({**RAW, "job": {"name": f"j-{uuid.uuid4().hex[:8]}"}}, "j.toml")
    a, _b = job.trials
    ledger.register_job(job)
    ledger.register_job(job)  # idempotent
    view = ledger.job(job.name)
    assert view is not None and [t.state for t in view.trials] == ["PENDING", "PENDING"]
    ledger.start_attempt(job.name, a.key, node="n1", start_epoch=0)
    ledger.update_trial(job.name, a.key, epochs_done=2, last_accuracy=0.5)
    ledger.end_attempt(job.name, a.key, outcome="RETRYING", failure_class="node_lost")
    ledger.start_attempt(job.name, a.key, node="n2", start_epoch=2)
    ledger.end_attempt(job.name, a.key, outcome="FINISHED")
    assert ledger.finished_keys(job.name) == {a.key}
    t = ledger.job(job.name).trials[0]  # type: ignore[union-attr]
    assert (t.state, t.attempts, t.epochs_done, t.node) == ("FINISHED", 2, 2, "n2")
    assert ledger.trial(job.name, a.key) == t  # one trial, read alone: the same view
    assert ledger.trial(job.name, _b.key).state == "PENDING"
    ledger.reset_trials(job.name, {a.key})
    assert ledger.finished_keys(job.name) == set()
    assert job.name in [j.name for j in ledger.jobs()]


def test_one_driver_per_job(ledger: Ledger) -> None:
    from orchestrator.errors import JobBusyError

    job = parse_job({**RAW, "job": {"name": f"lock-{uuid.uuid4().hex[:8]}"}}, "j.toml")
    ledger.register_job(job)
    assert ledger.claim_job(job.name, "hostA:1") is None
    assert ledger.claim_job(job.name, "hostA:1") is None  # re-entrant for the same driver
    with pytest.raises(JobBusyError, match="being run by hostA:1"):
        ledger.claim_job(job.name, "hostB:2")
    assert ledger.heartbeat(job.name, "hostA:1") and not ledger.heartbeat(job.name, "hostB:2")
    # A driver whose heartbeat is older than the lease is presumed dead: take over.
    assert ledger.claim_job(job.name, "hostB:2", ttl_s=-1) == "hostA:1"
    ledger.release_job(job.name, "hostB:2")
    assert ledger.claim_job(job.name, "hostC:3") is None


def test_dead_local_driver_is_taken_over_at_once(ledger: Ledger) -> None:
    import socket
    import subprocess
    import sys

    job = parse_job({**RAW, "job": {"name": f"dead-{uuid.uuid4().hex[:8]}"}}, "j.toml")
    ledger.register_job(job)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{socket.gethostname()}:{proc.pid}"
    ledger.claim_job(job.name, dead)
    ledger.start_attempt(job.name, job.trials[0].key, node="n", start_epoch=0)
    assert ledger.claim_job(job.name, "me:1") == dead
    assert ledger.close_open_attempts(job.name, "driver_lost", "driver died") == [
        t.key for t in job.trials
    ]


def test_speeds_moving_average(ledger: Ledger) -> None:
    gpu = f"gpu-{uuid.uuid4().hex[:6]}"
    ledger.record_speed(gpu, 100.0)
    ledger.record_speed(gpu, 200.0, weight=0.5)
    assert ledger.speeds()[gpu] == pytest.approx(150.0)
