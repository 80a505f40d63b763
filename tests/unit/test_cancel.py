"""scheduling/cancel.py, the work behind `orch cancel`, on a real SQLite ledger and MLflow
store: unfinished trials get a stop request; with no live driver the ledger and MLflow
record the cancel here, with one the driver does; finished trials stay as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Workspace, workspace
from orchestrator.ledger import Ledger, driver_id
from orchestrator.protocol import FailureClass
from orchestrator.scheduling.adapters.control import Control
from orchestrator.scheduling.cancel import cancel_job
from orchestrator.spec.load import load_job

JOB = """
[job]
name = "cx"
[defaults]
dataset = "digits"
epochs = 3
[[trial]]
name = "done"
model = "lenet5"
[[trial]]
name = "busy"
model = "lenet5"
seed = 1
[[trial]]
name = "waiting"
model = "lenet5"
seed = 2
"""
REASON = "cancelled by tester@here"


@pytest.fixture
def started(orch_home: Path, tmp_path: Path) -> tuple[Workspace, dict[str, str], str]:
    """Job "cx": trial "done" FINISHED, "busy" RUNNING with its MLflow run, "waiting"
    PENDING. Returns the workspace, the trials' keys by name and busy's run id."""
    from orchestrator.tracking.mlflow_store import MlflowStore

    path = tmp_path / "cx.toml"
    path.write_text(JOB)
    job = load_job(path)
    ws = workspace()
    ledger = Ledger(ws.ledger_url)
    ledger.register_job(job, JOB)
    keys = {t.name: t.key for t in job.trials}
    ledger.start_attempt("cx", keys["done"], node="n1", start_epoch=0)
    ledger.end_attempt("cx", keys["done"], outcome="FINISHED")
    store = MlflowStore(ws.tracking_uri, ws.artifact_root)
    exp = store.experiment_id("cx")
    assert exp is not None
    run_id = store.trial_run(exp, store.job_run(exp, "cx"), "cx", job.trials[1], 1)
    ledger.start_attempt("cx", keys["busy"], node="n1", start_epoch=0)
    ledger.update_trial("cx", keys["busy"], mlflow_run_id=run_id)
    ledger.engine.dispose()
    return ws, keys, run_id


def test_without_a_driver_the_cancel_is_recorded_here(
    started: tuple[Workspace, dict[str, str], str],
) -> None:
    from mlflow.tracking import MlflowClient

    ws, keys, run_id = started
    outcome = cancel_job("cx", ws, reason=REASON)
    assert (outcome.job, outcome.trials, outcome.stopped, outcome.driver) == ("cx", 3, 2, None)
    assert outcome.ray_job_id is None and outcome.ray_job_status is None

    control = Control(ws.storage)
    request = {"failure_class": FailureClass.CANCELLED, "reason": REASON}
    assert control.stop_request(keys["busy"]) == request
    assert control.stop_request(keys["waiting"]) == request
    assert control.stop_request(keys["done"]) is None

    view = Ledger(ws.ledger_url).job("cx")
    assert view is not None and view.state == "CANCELLED"
    assert [(t.name, t.state, t.error) for t in view.trials] == [
        ("done", "FINISHED", None),
        ("busy", "CANCELLED", REASON),
        ("waiting", "CANCELLED", REASON),
    ]
    run = MlflowClient(ws.tracking_uri).get_run(run_id)
    assert run.info.status == "KILLED"
    assert (run.data.tags["orch.state"], run.data.tags["orch.error"]) == ("CANCELLED", REASON)

    # Cancelled again: nothing is left to cancel, and nothing changes.
    again = cancel_job("cx", ws, reason="a second time")
    assert (again.state, again.trials, again.stopped) == ("CANCELLED", 3, 0)
    assert control.stop_request(keys["busy"]) == request


def test_a_live_driver_records_the_cancel_itself(
    started: tuple[Workspace, dict[str, str], str],
) -> None:
    ws, keys, _ = started
    ledger = Ledger(ws.ledger_url)
    owner = driver_id()  # this process: a live driver on this host
    ledger.claim_job("cx", owner)
    outcome = cancel_job("cx", ws, reason=REASON)
    assert (outcome.stopped, outcome.driver, outcome.state) == (2, owner, "RUNNING")
    assert Control(ws.storage).stop_request(keys["waiting"]) is not None
    # the ledger is the driver's to update as its trials stop
    view = ledger.job("cx")
    assert view is not None
    assert [t.state for t in view.trials] == ["FINISHED", "RUNNING", "PENDING"]
