"""TOML job file -> validated JobSpec. The only code in orch that reads job files.

Layout of a job file::

    [job]                      name, description, max_concurrent, experiment
    [defaults]                 any trial key; inherited by every trial (tables merge deeply)
    [[trial]]                  one trial: name, model, dataset, epochs, recipe, resources...

Every problem in the file is collected and reported together in one SpecError, each line
naming the file, the trial and the key path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.spec import schema as s
from orchestrator.spec.keys import trial_key
from orchestrator.spec.model import (
    CheckpointPolicy,
    DataSpec,
    JobSpec,
    Recipe,
    Reference,
    Resources,
    TrialSpec,
    freeze,
)

OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _models() -> list[str]:
    from orchestrator.zoo import list_families, list_models

    return [*list_models(), *list_families()]


def _datasets() -> list[str]:
    from orchestrator.data import list_datasets

    return list_datasets()


def _preprocessings() -> list[str]:
    from orchestrator.data import PREPROCESSING

    return list(PREPROCESSING)


def _augmentations() -> list[str]:
    from orchestrator.data import AUGMENTATIONS

    return list(AUGMENTATIONS)


RECIPE = s.Table({
    "optimizer": s.one_of(OPTIMIZERS, "optimizer"),
    "lr": s.is_number(gt=0),
    "momentum": s.is_number(ge=0, lt=1),
    "nesterov": s.is_bool,
    "weight_decay": s.is_number(ge=0),
    "weight_decay_mode": s.one_of(("l2", "decoupled"), "weight decay mode"),
    "schedule": s.Table({}, free=True),  # checked by training.schedules.schedule_from_dict
    "preprocess": s.one_of(_preprocessings, "preprocessing"),
    "augment": s.one_of(_augmentations, "augmentation"),
    "precision": s.one_of(PRECISIONS, "precision"),
    "xla": s.is_bool,
})
RESOURCES = s.Table({
    "gpus": s.is_number(ge=0),
    "cpus": s.is_number(gt=0),
    "memory_gb": s.is_number(gt=0),
    "gpu_type": s.str_or_str_list,
    "max_retries": s.is_int(lo=0),
    "timeout_s": s.is_number(gt=0),
})
REFERENCE = s.Table({
    "accuracy": s.is_number(ge=0, le=100),
    "params": s.is_int(lo=1),
    "time": s.is_str,
    "gpu": s.is_str,
    "batch_size": s.is_int(lo=1),
    "epochs": s.is_int(lo=1),
    "source": s.is_str,
})
DATA = s.Table({
    "validation_size": s.is_number(ge=0),
    "train_size": s.is_int(lo=1),
    "test_size": s.is_int(lo=1),
    "data_dir": s.is_str,
})
CHECKPOINT = s.Table({
    "every_epochs": s.is_int(lo=1),
    "every_minutes": s.is_number(gt=0),
    "keep": s.is_int(lo=1),
})
TRIAL = s.Table({
    "name": s.is_str,
    "model": s.one_of(_models, "model"),
    "model_args": s.Table({}, free=True),
    "dataset": s.one_of(_datasets, "dataset"),
    "data": DATA,
    "epochs": s.is_int(lo=1),
    "batch_size": s.is_int(lo=1),
    "seed": s.is_int(lo=0),
    "recipe": RECIPE,
    "resources": RESOURCES,
    "reference": REFERENCE,
    "checkpoint": CHECKPOINT,
})
DEFAULTS = s.Table({k: v for k, v in TRIAL.fields.items() if k != "name"})
JOB = s.Table({
    "name": s.is_str,
    "description": s.is_str,
    "max_concurrent": s.is_int(lo=1),
    "experiment": s.is_str,
})
TOP = s.Table({"job": JOB, "defaults": DEFAULTS, "trial": s.Table({}, free=True)})
REQUIRED_TRIAL_KEYS = ("model", "dataset", "epochs")


def load_job(path: str | Path) -> JobSpec:
    """Read, validate and expand a job file. Raises SpecError listing every problem."""
    path = Path(path)
    shown = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such job file. Check the path.") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as e:
        raise SpecError(f"{shown}: cannot read the job file: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{shown}: not valid TOML: {e}") from None
    return parse_job(raw, shown, default_name=path.stem)


def parse_job(raw: Mapping[str, Any], shown: str, default_name: str = "job") -> JobSpec:
    problems: list[str] = []
    where = f"{shown}: "
    trials_raw = raw.get("trial", [])
    top = {k: v for k, v in raw.items() if k != "trial"}
    s.validate_table(top, TOP, where, "", problems)
    if not isinstance(trials_raw, list) or not all(isinstance(t, Mapping) for t in trials_raw):
        problems.append(f"{where}trial: must be an array of tables ([[trial]]).")
        trials_raw = []
    if not trials_raw and not problems:
        problems.append(f"{where}no trials: add at least one [[trial]] with a model.")
    job = raw.get("job", {}) if isinstance(raw.get("job"), Mapping) else {}
    defaults = raw.get("defaults", {}) if isinstance(raw.get("defaults"), Mapping) else {}

    trials: list[TrialSpec] = []
    seen: dict[str, str] = {}
    for i, t in enumerate(trials_raw):
        merged = deep_merge(defaults, t)
        label = t.get("name") or t.get("model") or f"#{i + 1}"
        twhere = f'{where}trial "{label}": '
        before = len(problems)
        s.validate_table(t, TRIAL, twhere, "", problems)
        for key in REQUIRED_TRIAL_KEYS:
            if key not in merged:
                problems.append(
                    f"{twhere}{key}: missing. Set it in the trial or in [defaults]."
                )
        _check_schedule(merged, twhere, problems)
        if len(problems) == before:
            _check_model(merged, twhere, problems)
        if len(problems) > before:
            continue
        trial = build_trial(merged, name=str(label))
        if trial.key in seen:
            problems.append(
                f"{twhere}same model, data, recipe and seed as trial \"{seen[trial.key]}\" "
                f"(content key {trial.key}). Remove one or change its seed."
            )
        seen.setdefault(trial.key, trial.name)
        trials.append(trial)
    names = [t.name for t in trials]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f'{where}trial "{n}": name used by more than one trial. Names must be unique.')
    if problems:
        raise SpecError(problems)
    return JobSpec(
        name=str(job.get("name", default_name)),
        path=shown,
        trials=tuple(trials),
        description=str(job.get("description", "")),
        max_concurrent=job.get("max_concurrent"),
        experiment=str(job.get("experiment", "")),
    )


def _check_schedule(merged: Mapping[str, Any], twhere: str, problems: list[str]) -> None:
    recipe = merged.get("recipe", {})
    sched = recipe.get("schedule") if isinstance(recipe, Mapping) else None
    if not isinstance(sched, Mapping) or not sched:
        return
    from orchestrator.training.schedules import schedule_from_dict

    try:
        schedule_from_dict(sched, epochs=merged.get("epochs"), lr=recipe.get("lr", Recipe.lr))
    except SpecError as e:
        problems.extend(f"{twhere}recipe.schedule: {p}" for p in e.problems)


def _check_model(merged: Mapping[str, Any], twhere: str, problems: list[str]) -> None:
    """The zoo checks arguments and input size without building (no TensorFlow)."""
    from orchestrator.zoo import check_model

    args = merged.get("model_args", {})
    problems.extend(f"{twhere}model_args: {p}" for p in check_model(merged["model"], **args))


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`; tables merge key by key, everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def build_trial(t: Mapping[str, Any], name: str) -> TrialSpec:
    """A validated, merged trial table -> TrialSpec with its content key."""
    recipe = dict(t.get("recipe", {}))
    if recipe.get("schedule"):
        recipe["schedule"] = freeze(recipe["schedule"])
    resources = dict(t.get("resources", {}))
    if isinstance(resources.get("gpu_type"), str):
        resources["gpu_type"] = (resources["gpu_type"],)
    elif "gpu_type" in resources:
        resources["gpu_type"] = tuple(resources["gpu_type"])
    trial = TrialSpec(
        name=name,
        model=t["model"],
        model_args=freeze(t.get("model_args")),
        data=DataSpec(name=t["dataset"], **t.get("data", {})),
        epochs=t["epochs"],
        batch_size=t.get("batch_size", 128),
        seed=t.get("seed", 0),
        recipe=Recipe(**recipe),
        resources=Resources(**resources),
        reference=Reference(**t.get("reference", {})),
        checkpoint=CheckpointPolicy(**t.get("checkpoint", {})),
    )
    return _with_key(trial)


def _with_key(trial: TrialSpec) -> TrialSpec:
    from dataclasses import replace

    return replace(trial, key=trial_key(trial))
