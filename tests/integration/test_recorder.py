"""The driver-side recorder on a real MLflow SQLite store and ledger, fed trial events
directly (no Ray): retry budget, infrastructure failures, lost time, steps logged once."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.protocol import EpochReport, parse_report
from orchestrator.scheduling.adapters.control import Control
from orchestrator.spec.load import parse_job
from orchestrator.tracking.mlflow_store import MlflowStore
from orchestrator.tracking.recorder import Recorder

pytestmark = pytest.mark.integration


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Recorder, Ledger, MlflowStore, Control, str]:
    job = parse_job(
        {
            "job": {"name": "rec"},
            "trial": [
                {
                    "name": "t",
                    "model": "lenet5",
                    "dataset": "digits",
                    "epochs": 4,
                    "resources": {"max_retries": 1},
                }
            ],
        },
        "rec.toml",
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'orch.db'}")
    ledger.register_job(job)
    store = MlflowStore(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "art"))
    control = Control(tmp_path / "storage")
    rec = Recorder(job, store, ledger, control)
    return rec, ledger, store, control, job.trials[0].key


def epoch(e: int, **kw: float) -> EpochReport:
    return EpochReport.from_dict(
        {
            "epoch": e,
            "epochs_done": e + 1,
            "loss": 1.0 / (e + 1),
            "accuracy": 0.5,
            "val_loss": 1.0,
            "val_accuracy": 0.5,
            "lr": 0.1,
            "epoch_time_s": 2.0,
            "images_per_s": 100.0,
            "train_time_s": 2.0 * (e + 1),
            "gpu_name": "CPU",
            "gpu_count": 0,
            "params": 62006,
            "resumed_from": 0,
            **kw,
        }
    )


def test_budget_counts_only_non_infrastructure_failures(parts) -> None:  # type: ignore[no-untyped-def]
    rec, ledger, store, control, key = parts
    rec.trial_started(key)
    rec.trial_result(key, epoch(0))
    rec.trial_failed(key, "ActorDiedError: node died", will_retry=True, failure_class="node_lost")
    rec.trial_started(key)
    rec.trial_failed(key, "OutOfMemoryError", will_retry=True, failure_class="oom")
    assert control.stop_request(key) is None  # 1 counted failure = max_retries: retry
    rec.trial_started(key)
    rec.trial_failed(key, "OutOfMemoryError", will_retry=True, failure_class="oom")
    stop = control.stop_request(key)  # 2 counted > 1: the next attempt ends at once
    assert stop is not None and stop["failure_class"] == "oom"
    assert "2 counted against max_retries=1" in stop["reason"]
    t = ledger.job("rec").trials[0]  # type: ignore[union-attr]
    assert (t.state, t.attempts, t.counted_failures) == ("FAILED", 3, 2)  # FAILED at once
    rec.trial_started(key)  # Tune's relaunch, which reads the stop request: no attempt
    rec.trial_completed(key, parse_report({"stopped": 1, **stop}))
    t = ledger.job("rec").trials[0]  # type: ignore[union-attr]
    assert (t.state, t.attempts, t.counted_failures) == ("FAILED", 3, 2)
    assert t.error is not None and "gave up after 3 attempts" in t.error
    run = store.client.get_run(t.mlflow_run_id)  # type: ignore[arg-type]
    assert run.info.status == "FAILED" and run.data.tags["orch.failure_class"] == "oom"


def test_replayed_epochs_logged_once_and_lost_time_counted(parts) -> None:  # type: ignore[no-untyped-def]
    rec, ledger, store, _, key = parts
    rec.trial_started(key)
    for e in range(3):  # epoch 2 was reported but its checkpoint never written
        rec.trial_result(key, epoch(e, checkpointed=e < 2))
    rec.trial_failed(key, "ActorDiedError", will_retry=True, failure_class="node_lost")
    rec.trial_started(key)
    for e in range(2, 4):  # the retry resumes after epoch 1 and redoes epoch 2
        rec.trial_result(key, epoch(e, resumed_from=2))
    rec.trial_completed(key, epoch(3))
    t = ledger.job("rec").trials[0]  # type: ignore[union-attr]
    assert t.state == "FINISHED" and t.lost_time_s > 0
    steps = [m.step for m in store.client.get_metric_history(t.mlflow_run_id, "loss")]
    assert steps == [0, 1, 2, 3]
    assert ledger.attempts("rec", key)[1]["start_epoch"] == 2


def test_measured_epochs_teach_the_cost_model_what_plan_and_submit_read(parts) -> None:  # type: ignore[no-untyped-def]
    """The learning loop: each epoch's measured time against the cost model's estimate is
    kept in the ledger by "family@gpu_type" (efficiency_sample), and an estimate made with
    the ledger's ratios (as `orch submit` orders and `orch plan` prints) scales by it."""
    from orchestrator.spec.cost import estimate, learned_key

    rec, ledger, _, _, key = parts
    trial = rec.trials[key]
    predicted = estimate(trial, "gtx-1080-ti")
    assert predicted is not None
    rec.trial_started(key)
    slow = 3.0 * predicted.epoch_s  # three times the estimate
    rec.trial_result(key, epoch(0, epoch_time_s=slow, gpu_name="NVIDIA GeForce GTX 1080 Ti"))
    learned = ledger.speeds()
    assert learned == {learned_key(trial, "gtx-1080-ti"): pytest.approx(3.0)}
    again = estimate(trial, "gtx-1080-ti", learned=learned)
    assert again is not None and again.epoch_s == pytest.approx(slow, rel=0.02)
