"""Every key a job file may hold, with its type and allowed values (see `spec.schema`).

Names of models, datasets, preprocessings and augmentations come from the zoo and data
registries (pure imports, no TensorFlow), so the messages suggest real names.
"""

from __future__ import annotations

from orchestrator.spec import schema as s
from orchestrator.spec.model import DataSpec, Recipe, rules


def _models() -> list[str]:
    from orchestrator.zoo import list_families, list_models

    return [*list_models(), *list_families()]


def _datasets() -> list[str]:
    from orchestrator.data import list_datasets

    return list_datasets()


# Read from the dataclasses: each field carries its own rule (spec.model._rule).
RECIPE = s.Table(rules(Recipe))
RESOURCES = s.Table(
    {
        "gpus": s.is_number(ge=0),  # fractional up to 1 (several trials share a GPU)
        "cpus": s.is_number(gt=0),
        "memory_gb": s.is_number(gt=0),
        "gpu_type": s.str_or_str_list,  # one type, an ordered list of acceptable ones, or "any"
        "max_retries": s.is_int(lo=0, hi=s.MAX_RETRIES),
        "timeout_s": s.is_number(gt=0),
    }
)
REFERENCE = s.Table(
    {
        "accuracy": s.is_number(ge=0, le=100),  # percent
        "error": s.is_number(ge=0, le=100),  # percent; accuracy = 100 - error
        "params": s.is_int(lo=1),
        "time": s.is_str,
        "gpu": s.is_str,
        "batch_size": s.is_int(lo=1),
        "epochs": s.is_int(lo=1),
        "source": s.is_str,
    }
)
DATA = s.Table(rules(DataSpec))
CHECKPOINT = s.Table(
    {
        "every_epochs": s.is_int(lo=1),
        "every_minutes": s.is_number(gt=0),
        "keep": s.is_int(lo=1),
        "save_model": s.is_bool,
    }
)
# The keys that describe one training run; every level (defaults, grid, trial) takes them.
_RUN: dict[str, s.Check | s.Table] = {
    "model": s.one_of(_models, "model"),
    "model_args": s.Table({}, free=True),  # checked by zoo.check_model
    "dataset": s.one_of(_datasets, "dataset"),
    "data": DATA,
    "epochs": s.is_int(lo=1, hi=s.MAX_EPOCHS),
    "batch_size": s.is_int(lo=1, hi=s.MAX_BATCH_SIZE),
    "seed": s.is_int(lo=0, hi=s.MAX_SEED),
    "seeds": s.seed_list,
    "repeats": s.is_int(lo=1),
    "recipe": RECIPE,
    "resources": RESOURCES,
    "reference": REFERENCE,
    "checkpoint": CHECKPOINT,
}
TRIAL = s.Table({"name": s.is_str, **_RUN})
DEFAULTS = s.Table(_RUN)
TRIAL_KEYS = s.Table(_RUN)  # what a grid axis or an exclude rule may name
# A per-model block may rename its cells (a template too): "ResNet-20" for resnet20.
PER_MODEL = s.Table({"name": s.is_str, **{k: v for k, v in _RUN.items() if k != "model"}})
GRID = s.Table(
    {
        "name": s.is_str,  # a template, e.g. "{model}-{dataset}"
        **_RUN,
        "axes": s.Table({}, free=True),  # checked by spec.grid
        "zip": s.is_table_or_tables,
        "per_model": s.Table({}, free=True),
        "exclude": s.is_tables,
    }
)
JOB = s.Table(
    {
        "name": s.is_str,
        "description": s.is_str,
        "max_concurrent": s.is_int(lo=1),
        "experiment": s.is_str,
        "migrate": s.is_bool,
    }
)
NODE_TYPE = s.Table(
    {
        "name": s.is_str,
        "gpu_type": s.is_str,
        "gpus": s.is_int(lo=0),
        "cpus": s.is_number(gt=0),
        "memory_gb": s.is_number(gt=0),
        "count": s.is_int(lo=1),
    }
)
TOP = s.Table(
    {
        "job": JOB,
        "defaults": DEFAULTS,
        "cluster": s.Table({"node_type": s.is_tables}),
        "trial": s.is_tables,
        "grid": s.is_tables,
    }
)
REQUIRED_TRIAL_KEYS = ("model", "dataset", "epochs")
