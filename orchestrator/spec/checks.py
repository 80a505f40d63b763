"""Checks on one merged trial (a cell) that no single key can make alone: required keys,
the schedule, the model's arguments for its dataset, sizes, resources against [cluster],
and the reference's accuracy against its error. Pure: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.spec import schema as s
from orchestrator.spec.cluster import check_request, gpu_types
from orchestrator.spec.fields import REQUIRED_TRIAL_KEYS
from orchestrator.spec.grid import Cell
from orchestrator.spec.model import NodeType, Recipe, Resources

# Arguments create_model receives from elsewhere; in model_args they would collide.
_NOT_MODEL_ARGS = {
    "name": "not a model argument; the model is the trial's `model`",
    "num_classes": "comes from the dataset; not a model argument",
    "input_shape": "comes from the dataset; not a model argument",
}


def check_cell(cell: Cell, cluster: tuple[NodeType, ...], problems: list[str]) -> bool:
    """Append every problem of one cell; True when it can be built."""
    before = len(problems)
    t, where = cell.table, cell.where
    for key in REQUIRED_TRIAL_KEYS:
        if key not in t:
            problems.append(
                f"{where}{key}: missing. Set it in the trial, its [[grid]] or [defaults]."
            )
    _check_schedule(t, where, problems)
    if len(problems) == before:
        _check_model(t, where, problems)
    _check_data(t, where, problems)
    _check_resources(t, cluster, where, problems)
    _check_reference(t, where, problems)
    return len(problems) == before


def _check_schedule(t: Mapping[str, Any], where: str, problems: list[str]) -> None:
    recipe = t.get("recipe", {})
    sched = recipe.get("schedule") if isinstance(recipe, Mapping) else None
    if not isinstance(sched, Mapping) or not sched:
        return
    from orchestrator.training.schedules import SCHEDULE_KINDS, schedule_from_dict

    kind = sched.get("kind")
    if not isinstance(kind, str):  # schedule_from_dict assumes a hashable kind
        shown = "missing" if kind is None else f"Received: kind={kind!r}"
        problems.append(
            f"{where}recipe.schedule: kind: must be one of {', '.join(SCHEDULE_KINDS)}; {shown}."
        )
        return
    try:
        schedule_from_dict(sched, epochs=t.get("epochs"), lr=recipe.get("lr", Recipe.lr))
    except SpecError as e:
        problems.extend(f"{where}recipe.schedule: {p}" for p in e.problems)


def _check_model(t: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """The zoo checks arguments and input size for the dataset, without building."""
    from orchestrator.data import DATASETS
    from orchestrator.zoo import check_model

    info = DATASETS[t["dataset"]]
    args = dict(t.get("model_args", {}))
    for key, why in _NOT_MODEL_ARGS.items():
        if key in args:
            problems.append(
                f"{where}model_args.{key}: {why}. Received: {key}={s.shown(args.pop(key))}"
            )
    if "weight_decay" in args:
        problems.append(
            f"{where}model_args.weight_decay: set recipe.weight_decay instead; the recipe "
            "decides where weight decay goes (L2 on kernels or decoupled). "
            f"Received: weight_decay={args.pop('weight_decay')!r}"
        )
    try:
        found = check_model(
            t["model"], num_classes=info.num_classes, input_shape=info.input_shape, **args
        )
    except (TypeError, ValueError) as e:  # a value of a type the zoo's check did not expect
        found = [f"{t['model']}: arguments of the wrong type ({e}). Received: {s.shown(args)}"]
    problems.extend(f"{where}model_args: {p}" for p in found)


def _check_data(t: Mapping[str, Any], where: str, problems: list[str]) -> None:
    data = t.get("data", {})
    size = data.get("validation_size", 0)
    if isinstance(size, float) and size >= 1:
        problems.append(
            f"{where}data.validation_size: a fraction must lie in [0, 1); write a count as "
            f"a whole number. Received: validation_size={size!r}"
        )
    train = data.get("train_size")
    if isinstance(size, int) and size and train is not None and size >= train:
        problems.append(
            f"{where}data.validation_size: must leave training images; train_size is "
            f"{train}. Received: validation_size={size!r}"
        )


def _check_resources(
    t: Mapping[str, Any], cluster: tuple[NodeType, ...], where: str, problems: list[str]
) -> None:
    res = t.get("resources", {})
    types = gpu_types(res.get("gpu_type"), where, problems)
    check_request(
        res.get("gpus", Resources.gpus),
        res.get("cpus", Resources.cpus),
        res.get("memory_gb"),
        types,
        cluster,
        where,
        problems,
    )


def _check_reference(t: Mapping[str, Any], where: str, problems: list[str]) -> None:
    ref = t.get("reference", {})
    acc, err = ref.get("accuracy"), ref.get("error")
    if acc is not None and err is not None and abs(acc + err - 100) > 1e-6:
        problems.append(
            f"{where}reference: accuracy and error must add up to 100 (give one of them). "
            f"Received: accuracy={acc!r}, error={err!r}"
        )
