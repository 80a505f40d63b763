"""MLflow adapter: the layout of docs/architecture.md ("MLflow layout") in one place.

experiment = job name; one parent run per job (tag orch.role=job); one child run per trial
(tag orch.role=trial, orch.trial_key), found again by its key after a retry, a resume or a
driver restart, so a trial never gets a second run and no step is logged twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.protocol import MetricName, MlflowStatus, Role, Tag, TrialState
from orchestrator.spec.model import TrialSpec, declared
from orchestrator.tracking.ui_view import VIEW_TAG, ensure_view, view_json

__all__ = ["MlflowStore"]

_SCHEMA_LOCK = 0x6F726368  # "orch": the advisory-lock id serialising MLflow's schema setup
TAG_KEY, TAG_JOB, TAG_ROLE, TAG_STATE = Tag.TRIAL_KEY, Tag.JOB, Tag.ROLE, Tag.STATE
# MLflow 3's UI picks an experiment's mode from this tag; without it an experiment opens in
# GenAI mode (traces, token usage), with it the runs table, metrics and params of training.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


RUNS_PAGE = 10_000  # runs per search page (MLflow allows up to 50,000)


class RunRef(NamedTuple):
    """A run found in MLflow: its id and status."""

    run_id: str
    status: str


class MlflowStore:
    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        from orchestrator.stores import check_tracking_uri

        check_tracking_uri(tracking_uri)  # bad scheme, no driver, damaged file: one line
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._last_step: dict[str, int] = {}
        if tracking_uri.startswith("postgresql"):
            self.client = self._client_serialised()
        else:
            self.client = MlflowClient(tracking_uri)

    def _client_serialised(self) -> Any:
        """MLflow creates its schema when its store is first opened, without a lock, so two
        drivers opening a fresh PostgreSQL database at the same moment collide ("duplicate
        key ... alembic_version"). An advisory lock held on a side connection makes that
        first opening one at a time."""
        from mlflow.tracking import MlflowClient
        from sqlalchemy import create_engine, text

        engine = create_engine(self.tracking_uri)
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
                client = MlflowClient(self.tracking_uri)
                client.search_experiments(max_results=1)
        finally:
            engine.dispose()
        return client

    # -- experiments and runs -----------------------------------------------------------
    def experiment_id(self, name: str, *, create: bool = True) -> str | None:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                if not create:  # a read never brings a deleted experiment back
                    return None
                self.client.restore_experiment(exp.experiment_id)
            if create and exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                self.client.set_experiment_tag(
                    exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            if create:
                ensure_view(self.client, exp.experiment_id, exp.tags)
            return exp.experiment_id
        if not create:
            return None
        location = None
        if self.artifact_root:
            location = (
                Path(self.artifact_root).absolute().as_uri()
                if "://" not in self.artifact_root
                else self.artifact_root
            )
        tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, VIEW_TAG: view_json()}
        return self.client.create_experiment(name, artifact_location=location, tags=tags)

    def _find(self, exp_id: str, **tags: str) -> Any | None:
        flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs(
            [exp_id], filter_string=flt, max_results=1, order_by=["attributes.start_time DESC"]
        )
        return runs[0] if runs else None

    def job_run(self, exp_id: str, job: str, description: str = "") -> str:
        run = self._find(exp_id, **{TAG_ROLE: Role.JOB, TAG_JOB: job})
        if run is not None:
            self.client.update_run(run.info.run_id, status=MlflowStatus.RUNNING)
            return run.info.run_id
        run = self.client.create_run(
            exp_id,
            run_name=job,
            tags={TAG_ROLE: Role.JOB, TAG_JOB: job, "mlflow.note.content": description},
        )
        return run.info.run_id

    def trial_runs(self, exp_id: str) -> dict[str, RunRef]:
        """Every live trial run of the experiment, by trial key (the newest where a key has
        two), in one paginated search: a search filters on tags by scanning the
        experiment, so one search per trial costs a job time quadratic in its size (a
        10,000-trial grid slowed from 15 runs a second to 2 by its 3,000th)."""
        from mlflow.entities import ViewType

        found: dict[str, RunRef] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [exp_id],
                filter_string=f"tags.`{TAG_ROLE}` = '{Role.TRIAL}'",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=RUNS_PAGE,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            for run in page:
                key = run.data.tags.get(TAG_KEY)
                if key and key not in found:
                    found[key] = RunRef(run.info.run_id, run.info.status)
            token = page.token
            if not token:
                return found

    def trial_run(
        self,
        exp_id: str,
        parent_id: str,
        job: str,
        trial: TrialSpec,
        position: int = 0,
        *,
        known: Mapping[str, RunRef] | None = None,
    ) -> str:
        """The trial's single run: found by key, or created with its params and tags.
        `known`: the experiment's trial runs (`trial_runs`), read once for a whole job;
        without it, this trial's run is searched for."""
        if known is None:
            run = self._find(exp_id, **{TAG_ROLE: Role.TRIAL, TAG_KEY: trial.key})
            found = RunRef(run.info.run_id, run.info.status) if run is not None else None
        else:
            found = known.get(trial.key)
        if found is not None:
            if found.status != MlflowStatus.RUNNING:
                self.client.update_run(found.run_id, status=MlflowStatus.RUNNING)
            return found.run_id
        tags = {
            TAG_ROLE: Role.TRIAL,
            TAG_KEY: trial.key,
            TAG_JOB: job,
            TAG_STATE: str(TrialState.PENDING),
            "mlflow.parentRunId": parent_id,
            Tag.GROUP: trial.group,
            Tag.POSITION: str(position),
        }
        tags.update(
            {
                f"{Tag.REF_PREFIX}{k}": str(v)
                for k, v in asdict(trial.reference).items()
                if v is not None
            }
        )
        run = self.client.create_run(exp_id, run_name=trial.name, tags=tags)
        self.client.log_batch(run.info.run_id, params=_params(trial))
        # The resolved trial, exactly as it trains (after defaults and grid expansion).
        self.client.log_dict(run.info.run_id, _resolved(trial), "trial.json")
        self._last_step[run.info.run_id] = -1
        return run.info.run_id

    def delete_trial_runs(self, exp_id: str, keys: set[str]) -> None:
        """--force: the old runs go to MLflow's trash, so the rerun is the only live one."""
        for key in keys:
            while (run := self._find(exp_id, **{TAG_ROLE: Role.TRIAL, TAG_KEY: key})) is not None:
                self.client.delete_run(run.info.run_id)

    # -- logging ------------------------------------------------------------------------
    def last_step(self, run_id: str) -> int:
        if run_id not in self._last_step:
            history = self.client.get_metric_history(run_id, MetricName.LOSS)
            self._last_step[run_id] = max((m.step for m in history), default=-1)
        return self._last_step[run_id]

    def log_epoch(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Log one epoch's metrics (`EpochReport.epoch_metrics`) at step=epoch, once.
        Returns False if that step was already logged."""
        if epoch <= self.last_step(run_id):
            return False
        from mlflow.entities import Metric

        ts = _now_ms()
        batch = [Metric(k, float(v), ts, epoch) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)
        self._last_step[run_id] = epoch
        return True

    def log_final(self, run_id: str, step: int, metrics: Mapping[str, float]) -> None:
        """The metrics logged once, at the last epoch (`EpochReport.final_metrics`)."""
        from mlflow.entities import Metric

        ts = _now_ms()
        self.client.log_batch(
            run_id, metrics=[Metric(k, float(v), ts, step) for k, v in metrics.items()]
        )

    def log_metric(self, run_id: str, key: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        self.client.log_batch(run_id, metrics=[Metric(key, float(value), _now_ms(), step)])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end_run(self, run_id: str, status: str) -> None:
        """status: FINISHED | FAILED | KILLED (MLflow's run statuses)."""
        self.client.set_terminated(run_id, status=status)

    def log_dict(self, run_id: str, obj: Any, path: str) -> None:
        self.client.log_dict(run_id, obj, path)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_artifact(self, run_id: str, local_path: str, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, local_path, folder)

    def log_job_results(self, job: str, experiment: str, files: Mapping[str, str]) -> None:
        """The benchmark table (and report) as artifacts of the job's parent run, so the
        MLflow UI shows the job's result where its trials are: {artifact path: text}."""
        exp_id = self.experiment_id(experiment, create=False)
        run = self._find(exp_id, **{TAG_ROLE: Role.JOB, TAG_JOB: job}) if exp_id else None
        if run is None:
            return
        for path, text in files.items():
            self.client.log_text(run.info.run_id, text, path)


def _resolved(trial: TrialSpec) -> dict[str, Any]:
    out = asdict(trial)
    out["recipe"] = declared(trial.recipe)  # the parsed schedule is derived: not a setting
    out["model_args"] = trial.model_kwargs
    out["recipe"]["schedule"] = trial.recipe.schedule_dict
    return out


# Where the flat param names come from: the resolved trial's parts, flattened with these
# prefixes, so that a new recipe or data field becomes a param without an edit here.
_FLAT_PARTS = (("recipe", ""), ("data", ""), ("model_args", "model."))
_NOT_PARAMS = {"data": ("name", "data_dir")}  # name is `dataset`; where data lives is no param


def _params(trial: TrialSpec) -> list[Any]:
    """Flat, consistently named params: the same names for every model, for the MLflow UI.

    The resolved trial flattened: model, dataset, epochs, batch_size, seed, every recipe
    and data field by its own name, the model arguments as model.<arg>, gpus and cpus.
    """
    from mlflow.entities import Param

    resolved = _resolved(trial)
    flat: dict[str, Any] = {
        "model": trial.model,
        "dataset": trial.data.name,
        "epochs": trial.epochs,
        "batch_size": trial.batch_size,
        "seed": trial.seed,
    }
    for part, prefix in _FLAT_PARTS:
        skip = _NOT_PARAMS.get(part, ())
        flat.update({f"{prefix}{k}": v for k, v in resolved[part].items() if k not in skip})
    schedule = trial.recipe.schedule_dict or {"kind": "constant"}
    flat["schedule"] = json.dumps(schedule, sort_keys=True)
    flat.update(gpus=trial.resources.gpus, cpus=trial.resources.cpus)
    return [Param(k, str(v)) for k, v in flat.items()]


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
