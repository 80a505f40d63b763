"""Records trial events in MLflow and the ledger, from the driver.

The scheduler turns Ray Tune's callbacks into these events (see scheduling/events.py), so
this code is independent of Tune and easy to test. Per-epoch results become MLflow metrics
at step=epoch (each step once, even when a retried trial reports an epoch again) and
ledger progress; the last epoch's result carries test metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.ledger import Ledger
from orchestrator.spec.model import JobSpec, TrialSpec
from orchestrator.tracking.mlflow_store import TAG_STATE, MlflowStore

_HW_TAGS = {
    "gpu_name": "orch.gpu",
    "gpu_count": "orch.gpu_count",
    "precision": "orch.precision",
    "node_ip": "orch.node",
    "val_on_test": "orch.val_on_test",
}


class Recorder:
    def __init__(self, job: JobSpec, store: MlflowStore, ledger: Ledger) -> None:
        self.job, self.store, self.ledger = job, store, ledger
        self.trials = {t.key: t for t in job.trials}
        self.exp_id = store.experiment_id(job.experiment_name)
        assert self.exp_id is not None
        self.parent_id = store.job_run(self.exp_id, job.name, job.description)
        ledger.set_job_state(job.name, "RUNNING", mlflow_run_id=self.parent_id)
        self._run_ids: dict[str, str] = {}
        self._tagged: set[str] = set()
        self._gpus: dict[str, set[str]] = {}

    def run_id(self, key: str) -> str:
        if key not in self._run_ids:
            trial: TrialSpec = self.trials[key]
            run_id = self.store.trial_run(self.exp_id, self.parent_id, self.job.name, trial)
            self._run_ids[key] = run_id
            self.ledger.update_trial(self.job.name, key, mlflow_run_id=run_id)
        return self._run_ids[key]

    # -- events -------------------------------------------------------------------------
    def trial_started(self, key: str) -> None:
        self._tagged.discard(key)  # a new attempt may run on other hardware: tag again
        self.ledger.start_attempt(self.job.name, key, node=None, start_epoch=0)
        self.store.set_tags(self.run_id(key), {TAG_STATE: "RUNNING"})

    def trial_result(self, key: str, result: Mapping[str, Any]) -> None:
        run_id = self.run_id(key)
        if key not in self._tagged:
            self._tag_hardware(key, run_id, result)
        if result.get("diverged"):
            return  # trial_completed turns it into DIVERGED with the message
        if "accuracy" in result:
            self.store.log_epoch(run_id, int(result["epoch"]), result)
        if "test_accuracy" in result:
            self.store.log_final(run_id, result)
        self.ledger.update_trial(
            self.job.name,
            key,
            epochs_done=int(result.get("epochs_done", 0)),
            last_accuracy=result.get("val_accuracy"),
            test_accuracy=result.get("test_accuracy"),
            node=result.get("node_ip"),
            gpu=_gpu_label(result),
        )

    def trial_completed(self, key: str, last: Mapping[str, Any]) -> None:
        run_id = self.run_id(key)
        if last.get("diverged"):
            msg = str(last.get("message", "diverged"))
            self.ledger.end_attempt(
                self.job.name, key, outcome="DIVERGED", failure_class="diverged", message=msg
            )
            self.store.set_tags(run_id, {TAG_STATE: "DIVERGED", "orch.error": msg})
            self.store.end_run(run_id, "FAILED")
            return
        self.ledger.end_attempt(self.job.name, key, outcome="FINISHED")
        self.store.set_tags(run_id, {TAG_STATE: "FINISHED"})
        self.store.end_run(run_id, "FINISHED")

    def trial_failed(
        self, key: str, message: str, *, will_retry: bool, failure_class: str = "error"
    ) -> None:
        run_id = self.run_id(key)
        outcome = "RETRYING" if will_retry else "FAILED"
        self.ledger.end_attempt(
            self.job.name, key, outcome=outcome, failure_class=failure_class, message=message
        )
        self.store.set_tags(run_id, {TAG_STATE: outcome, "orch.error": message[:4000]})
        if not will_retry:
            self.store.end_run(run_id, "FAILED")

    def job_finished(self, state: str) -> None:
        self.ledger.set_job_state(self.job.name, state)
        self.store.end_run(self.parent_id, "FINISHED" if state == "FINISHED" else "FAILED")

    def _tag_hardware(self, key: str, run_id: str, result: Mapping[str, Any]) -> None:
        tags = {tag: result[k] for k, tag in _HW_TAGS.items() if k in result}
        label = _gpu_label(result)
        if label:
            # A trial resumed on another GPU type ran on mixed hardware: say so.
            seen = self._gpus.setdefault(key, set())
            prior = self.store.client.get_run(run_id).data.tags.get("orch.hardware")
            seen.update(x for x in (prior or "").split(" + ") if x)
            seen.add(label)
            tags["orch.hardware"] = " + ".join(sorted(seen))
            tags["orch.mixed_hardware"] = len(seen) > 1
        if tags:
            self.store.set_tags(run_id, tags)
        self._tagged.add(key)


def _gpu_label(result: Mapping[str, Any]) -> str | None:
    name = result.get("gpu_name")
    if not name:
        return None
    count = int(result.get("gpu_count") or 0)
    return str(name) if count <= 1 else f"{name} x{count}"
