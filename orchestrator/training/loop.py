"""The epoch loop of one trial: build, restore, train epoch by epoch, checkpoint, report.

It knows nothing of Ray: `report` is any callable taking the trial's typed reports
(protocol.py), so the same loop serves a Ray Tune trial (`tune.report` of their dicts) and
`orch train` (a printer). Each epoch's data
order and augmentation depend only on (seed, epoch), and the checkpoint holds every model
and optimizer variable (seed-generator state included), so a trial resumed after epoch k
continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.protocol import (
    EndKind,
    EpochReport,
    FailureClass,
    MetricName,
    Report,
    StopRequest,
    TrialEnd,
)
from orchestrator.spec.model import TrialSpec
from orchestrator.training.checkpoint import CheckpointStore, TrainState
from orchestrator.training.hardware import distribution_strategy, setup_tensorflow

# Takes each report: an EpochReport per epoch, a TrialEnd when the trial ends early. A Ray
# trial turns it into a dict for `tune.report`; `orch train` prints it.
Reporter = Callable[[Report], None]


@dataclass(frozen=True)
class LoopResult:
    epochs_done: int
    resumed_from: int  # epochs already done when this process started
    diverged: bool
    final: Report | None  # the last report (None: nothing was left to do)
    stopped: bool = False  # ended early on a stop request (cancel, budget, infeasible)


@dataclass
class _Progress:
    """What a checkpoint keeps beside the weights (its `meta`, under these field names)."""

    train_time_s: float = 0.0  # compute that counts: every epoch run, fit + validation
    best_val_accuracy: float | None = None
    schedule: dict[str, Any] | None = None  # the schedule's state, for those that have one

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> _Progress:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in names})

    def meta(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.schedule is None:
            del out[_SCHEDULE]
        return out


_SCHEDULE = "schedule"


def run_trial(
    trial: TrialSpec,
    *,
    storage: str,
    report: Reporter,
    cpus: float | None = None,
    stop_after: int | None = None,
    data_dir: str | None = None,
    mirror_devices: list[str] | None = None,
    should_stop: Callable[[], StopRequest | None] | None = None,
    node_id: str | None = None,
) -> LoopResult:
    """Train `trial` to its last epoch (or `stop_after` epochs), resuming from its newest
    checkpoint under `storage`. Returns after a NaN loss with `diverged=True`: retrying a
    deterministic divergence would only diverge again. `mirror_devices` forces a
    MirroredStrategy over those devices (by default: over the trial's GPUs, if several).
    `should_stop` is asked after every epoch; a request ends the trial after checkpointing,
    with one last report, a stopped TrialEnd. `node_id` goes into every report (Ray's id of
    the node this runs on)."""
    hw = setup_tensorflow(
        cpus=cpus or trial.resources.cpus,
        precision=trial.recipe.precision,
        seed=trial.seed,
        gpu_fraction=trial.resources.gpus or 1.0,
    )
    from orchestrator.data import load_dataset, make_eval_pipeline, make_train_pipeline

    data = load_dataset(
        trial.data.name,
        data_dir=data_dir or trial.data.data_dir,
        validation_size=trial.data.validation_size,
        train_size=trial.data.train_size,
        test_size=trial.data.test_size,
    )

    def evaluate(split: Any) -> dict[str, float]:
        ds = make_eval_pipeline(
            split,
            batch_size=trial.batch_size,
            preprocess=trial.recipe.preprocess,
            dataset=trial.data.name,
        )
        return {k: float(v) for k, v in model.evaluate(ds, verbose=0, return_dict=True).items()}

    # The seeds validate on the test set; with a held-out split nothing is selected on it.
    val_split = data.val if data.val is not None else data.test
    schedule = _schedule(trial)
    strategy = distribution_strategy(hw, mirror_devices)
    model, optimizer = _build(trial, strategy, data.num_classes, data.input_shape)

    store = CheckpointStore(storage, trial.key, keep=trial.checkpoint.keep)
    start, progress = 0, _Progress()
    state = store.latest()
    if state is not None:
        _restore(model, optimizer, state)
        start, progress = state.epoch, _Progress.from_meta(state.meta)
        if hasattr(schedule, "load_state") and progress.schedule is not None:
            schedule.load_state(progress.schedule)

    # What every report of this process says: the model, the hardware, where it resumed,
    # and what produced the result (versions, commit, GPU stack, determinism, data sha256).
    facts = EpochReport(
        epoch=start,
        epochs_done=start,
        params=int(model.count_params()),
        gpu_name=hw.gpu_name,
        gpu_count=hw.gpu_count,
        precision=hw.precision,
        resumed_from=start,
        replicas=int(strategy.num_replicas_in_sync),
        val_on_test=data.val is None,
        node_id=node_id,
        provenance=_provenance(trial, hw, data),
    )
    last: Report | None = None
    last_save = time.monotonic()
    end = trial.epochs if stop_after is None else min(trial.epochs, stop_after)
    for epoch in range(start, end):
        lr = float(schedule.lr_at(epoch)) if schedule else trial.recipe.lr
        optimizer.learning_rate.assign(lr)
        train_ds = make_train_pipeline(
            data.train,
            batch_size=trial.batch_size,
            epoch=epoch,
            seed=trial.seed,
            augment=trial.recipe.augment,
            preprocess=trial.recipe.preprocess,
            dataset=trial.data.name,
        )
        usage = _Usage()
        t0 = time.perf_counter()
        hist = model.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0, shuffle=False)
        fit_s = time.perf_counter() - t0
        loss = float(hist.history["loss"][-1])
        if not math.isfinite(loss):
            diverged = TrialEnd(
                EndKind.DIVERGED,
                FailureClass.DIVERGED,
                f"diverged at epoch {epoch}: loss={loss}",
                last=dataclasses.replace(facts, epoch=epoch, epochs_done=epoch, loss=loss),
            )
            report(diverged)
            return LoopResult(epoch, start, True, diverged)
        val = evaluate(val_split)
        epoch_s = time.perf_counter() - t0
        progress.train_time_s += epoch_s
        progress.best_val_accuracy = max(progress.best_val_accuracy or 0.0, val["accuracy"])
        if hasattr(schedule, "observe"):
            schedule.observe(
                epoch, {MetricName.VAL_LOSS: val["loss"], MetricName.VAL_ACCURACY: val["accuracy"]}
            )
        last_epoch = epoch + 1 == trial.epochs
        test = evaluate(data.test) if last_epoch else {}
        stop = should_stop() if should_stop else None
        timeout = trial.resources.timeout_s
        if stop is None and timeout is not None and progress.train_time_s > timeout:
            # checked between epochs: the epoch that crosses the limit still completes
            stop = StopRequest(
                FailureClass.TIMEOUT,
                f"timeout: {progress.train_time_s:.0f} s of compute exceeds "
                f"resources.timeout_s={timeout:g}",
            )
        checkpointed = _due(trial, epoch, end, last_save) or stop is not None
        if checkpointed:
            if hasattr(schedule, "state"):
                progress.schedule = schedule.state()
            store.save(TrainState(epoch + 1, _snapshot(model, optimizer), progress.meta()))
            last_save = time.monotonic()
        epoch_report = dataclasses.replace(
            facts,
            epoch=epoch,
            epochs_done=epoch + 1,
            loss=loss,
            accuracy=float(hist.history["accuracy"][-1]),
            val_loss=val["loss"],
            val_accuracy=val["accuracy"],
            lr=lr,
            epoch_time_s=epoch_s,
            images_per_s=len(data.train.x) / fit_s,
            train_time_s=progress.train_time_s,
            best_val_accuracy=progress.best_val_accuracy,
            test_loss=test.get("loss"),
            test_accuracy=test.get("accuracy"),
            checkpointed=checkpointed,
            # the architecture, once, for the MLflow run's artifacts
            model_summary=_summary(model) if epoch == start == 0 else None,
            model_path=_save_model(model, storage, trial.key)
            if last_epoch and trial.checkpoint.save_model
            else None,
            extra=usage.metrics(),
        )
        report(epoch_report)
        last = epoch_report
        if stop is not None and not last_epoch:
            stopped = stop.end(epochs_done=epoch + 1, last=epoch_report)
            report(stopped)
            return LoopResult(epoch + 1, start, False, epoch_report, stopped=True)
    if start >= trial.epochs:  # restarted after the last checkpoint: only the test is left
        test = evaluate(data.test)
        last = dataclasses.replace(
            facts,
            epoch=trial.epochs - 1,
            epochs_done=trial.epochs,
            train_time_s=progress.train_time_s,
            test_loss=test["loss"],
            test_accuracy=test["accuracy"],
            # no epoch ran in this process: `usage` was never set
            extra=_Usage().metrics(),
        )
        report(last)
    return LoopResult(max(start, end), start, False, last)


def _provenance(trial: TrialSpec, hw: Any, data: Any) -> dict[str, str]:
    from orchestrator.tracking.provenance import collect

    generated = () if data.files else (data.train.x, data.train.y, data.test.x, data.test.y)
    prov = collect(
        gpu_count=hw.gpu_count,
        seed=trial.seed,
        xla=trial.recipe.xla,
        precision=hw.precision,
        data_files=data.files,
        data_arrays=generated,
    )
    return {**prov, "gpu": hw.label}


class _Usage:
    """System metrics of one epoch, named as MLflow's system metrics: this process's CPU
    use (percent of the cores it may use) and memory, and the GPU memory peak if any."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.proc.cpu_percent(None)  # starts the measurement interval

    def metrics(self) -> dict[str, float]:
        import tensorflow as tf

        cores = len(self.proc.cpu_affinity()) if hasattr(self.proc, "cpu_affinity") else 1
        out = {
            "system/cpu_utilization_percentage": self.proc.cpu_percent(None) / max(cores, 1),
            "system/system_memory_usage_megabytes": self.proc.memory_info().rss / 2**20,
        }
        for i, _ in enumerate(tf.config.list_physical_devices("GPU")):
            info = tf.config.experimental.get_memory_info(f"GPU:{i}")
            out[f"system/gpu_{i}_memory_usage_megabytes"] = info["peak"] / 2**20
            tf.config.experimental.reset_memory_stats(f"GPU:{i}")
        return out


def _summary(model: Any) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line), line_length=110)
    return "\n".join(lines)


def _save_model(model: Any, storage: str, key: str) -> str:
    """The final model in .keras format on the shared storage, for the MLflow artifact."""
    from orchestrator.storage import is_uri

    if is_uri(storage):  # Keras writes local files; the recorder reads them from there
        storage = os.path.join(os.environ.get("TMPDIR", "/tmp"), "orch-models")
    path = os.path.join(storage, "models", key, "model.keras")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save(path)
    return path


def _due(trial: TrialSpec, epoch: int, end: int, last_save: float) -> bool:
    """Checkpoint every N epochs or M minutes, and always at the last epoch run."""
    policy = trial.checkpoint
    if epoch + 1 == end or (epoch + 1) % policy.every_epochs == 0:
        return True
    minutes = policy.every_minutes
    return minutes is not None and time.monotonic() - last_save >= 60 * minutes


def _schedule(trial: TrialSpec) -> Any:
    """The schedule the spec parsed (a TrialSpec built by hand may not carry one yet)."""
    from orchestrator.training.schedules import parse_schedule, start_schedule

    value = trial.recipe.lr_schedule
    if value is None and trial.recipe.schedule:
        r = trial.recipe
        value = parse_schedule(r.schedule_dict, epochs=trial.epochs, lr=r.lr)
    return start_schedule(value)


def _build(trial: TrialSpec, strategy: Any, num_classes: int, input_shape: tuple) -> tuple:
    from orchestrator.training.optimizers import optimizer_for
    from orchestrator.zoo import create_model

    r = trial.recipe
    with strategy.scope():
        optimizer, model_l2 = optimizer_for(r)
        model = create_model(
            trial.model,
            num_classes=num_classes,
            input_shape=tuple(input_shape),
            weight_decay=model_l2,
            **trial.model_kwargs,
        )
        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=r.xla,
        )
        optimizer.build(model.trainable_variables)
    return model, optimizer


def _snapshot(model: Any, optimizer: Any) -> dict[str, list[Any]]:
    return {
        "model": [v.numpy() for v in model.variables],
        "optimizer": [v.numpy() for v in optimizer.variables],
    }


def _restore(model: Any, optimizer: Any, state: TrainState) -> None:
    for group, variables in (("model", model.variables), ("optimizer", optimizer.variables)):
        arrays = state.arrays[group]
        if len(arrays) != len(variables):
            raise RuntimeError(
                f"checkpoint does not match the model: {len(arrays)} {group} arrays for "
                f"{len(variables)} variables"
            )
        for var, arr in zip(variables, arrays, strict=True):
            var.assign(arr)
