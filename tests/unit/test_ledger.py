"""The ledger on SQLite and on the real PostgreSQL server (127.0.0.1:5432, db `test`)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.spec.load import parse_job

RAW = {
    "job": {"name": "j"},
    "defaults": {"dataset": "digits", "epochs": 3},
    "trial": [{"name": "a", "model": "lenet5"}, {"name": "b", "model": "resnet20"}],
}


def postgres_url() -> str | None:
    try:
        import psycopg2

        psycopg2.connect("host=127.0.0.1 port=5432 dbname=test user=postgres").close()
    except Exception:
        return None
    return "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        return Ledger(f"sqlite:///{tmp_path / 'orch.db'}")
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    return Ledger(url)


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
    ledger.reset_trials(job.name, {a.key})
    assert ledger.finished_keys(job.name) == set()
    assert job.name in [j.name for j in ledger.jobs()]
