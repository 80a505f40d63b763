"""Checks on one merged trial (a cell) that no single key can make alone: required keys,
the recipe's cross-field rules, the schedule, the model's arguments for its dataset, sizes,
resources against [cluster], and the reference's accuracy against its error. Pure: no
TensorFlow. These are the trial's rules too: the trial process builds what passed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.spec import schema as s
from orchestrator.spec.cluster import check_request, gpu_types
from orchestrator.spec.fields import REQUIRED_TRIAL_KEYS
from orchestrator.spec.grid import Cell
from orchestrator.spec.model import NodeType, Recipe, Resources, declared
from orchestrator.spec.recipe import cross_field_problems, default_weight_decay_mode
from orchestrator.spec.schedule import ScheduleValue, parse_schedule

# Arguments create_model receives from elsewhere; in model_args they would collide.
_NOT_MODEL_ARGS = {
    "name": "not a model argument; the model is the trial's `model`",
    "num_classes": "comes from the dataset; not a model argument",
    "input_shape": "comes from the dataset; not a model argument",
}


@dataclass(frozen=True)
class Checked:
    """What checking a cell parsed, so that building it parses nothing again."""

    schedule: ScheduleValue | None


def check_cell(cell: Cell, cluster: tuple[NodeType, ...], problems: list[str]) -> Checked | None:
    """Append every problem of one cell; what it parsed when it can be built, else None."""
    before = len(problems)
    t, where = cell.table, cell.where
    for key in REQUIRED_TRIAL_KEYS:
        if key not in t:
            problems.append(
                f"{where}{key}: missing. Set it in the trial, its [[grid]] or [defaults]."
            )
    _check_recipe(t, where, problems)
    schedule = _check_schedule(t, where, problems)
    if len(problems) == before:
        _check_model(t, where, problems)
    _check_data(t, where, problems)
    _check_resources(t, cluster, where, problems)
    _check_reference(t, where, problems)
    return Checked(schedule) if len(problems) == before else None


def resolved_recipe(t: Mapping[str, Any]) -> dict[str, Any]:
    """The cell's recipe table with every default filled in, as the trial will train it."""
    recipe = dict(t.get("recipe", {}))
    if "weight_decay_mode" not in recipe:
        recipe["weight_decay_mode"] = default_weight_decay_mode(
            recipe.get("optimizer", Recipe.optimizer),
            recipe.get("weight_decay", Recipe.weight_decay),
        )
    return {**declared(Recipe()), **recipe}


def _check_recipe(t: Mapping[str, Any], where: str, problems: list[str]) -> None:
    problems.extend(f"{where}recipe.{p}" for p in cross_field_problems(resolved_recipe(t)))


def _check_schedule(t: Mapping[str, Any], where: str, problems: list[str]) -> ScheduleValue | None:
    """The cell's schedule, parsed once (None: constant lr, or broken and reported)."""
    recipe = t.get("recipe", {})
    sched = recipe.get("schedule") if isinstance(recipe, Mapping) else None
    if not isinstance(sched, Mapping) or not sched:
        return None
    try:
        return parse_schedule(sched, epochs=t.get("epochs"), lr=recipe.get("lr", Recipe.lr))
    except SpecError as e:
        problems.extend(f"{where}recipe.schedule: {p}" for p in e.problems)
        return None


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
    if found := _beyond_limits(args):  # checking (or sizing) a huge network could hang
        problems.extend(f"{where}model_args.{p}" for p in found)
        return
    try:
        found = check_model(
            t["model"], num_classes=info.num_classes, input_shape=info.input_shape, **args
        )
    except (TypeError, ValueError) as e:  # a value of a type the zoo's check did not expect
        found = [f"{t['model']}: arguments of the wrong type ({e}). Received: {s.shown(args)}"]
    problems.extend(f"{where}model_args: {p}" for p in found)


# Sanity limits on the integer model arguments, far above every published network (ResNet-
# 1202, DenseNet-BC k=40, WRN-40-10, ResNeXt 32x4d): a bigger value is a typo, and checking,
# sizing or building it would take hours or more memory than any machine has.
MODEL_ARG_LIMITS: dict[str, int] = {
    "depth": 2000,
    "growth_rate": 256,
    "width": 64,
    "base_filters": 1024,
    "base_width": 1024,
    "init_filters": 4096,
    "fc_units": 65536,
    "cardinality": 256,
    "se_reduction": 1024,
    "num_blocks": 16,
    "layers_per_block": 1000,  # each block's, when a list
}
MAX_BLOCK_LIST = 16  # entries of a layers_per_block list


def _beyond_limits(args: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, limit in MODEL_ARG_LIMITS.items():
        value = args.get(key)
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > MAX_BLOCK_LIST:
            problems.append(
                f"{key}: at most {MAX_BLOCK_LIST} entries (a sanity limit). "
                f"Received: {key}={s.shown(value)}"
            )
        elif any(isinstance(v, int) and not isinstance(v, bool) and v > limit for v in values):
            problems.append(
                f"{key}: must be <= {limit}, a sanity limit far above every published "
                f"network; a bigger value is most likely a typo. Received: {key}={s.shown(value)}"
            )
    return problems


def _check_data(t: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """The loader's own size rules (`data.registry`, `data.splits`), on the dataset's
    known split sizes, so that a size the loader would refuse never reaches a trial."""
    from orchestrator.data.registry import DATASETS, SYNTHETIC_TRAIN, check_subset_size
    from orchestrator.data.splits import resolve_count

    data = t.get("data", {})
    size = data.get("validation_size", 0)
    if isinstance(size, float) and size >= 1:
        problems.append(
            f"{where}data.validation_size: a fraction must lie in [0, 1); write a count as "
            f"a whole number. Received: validation_size={size!r}"
        )
        return
    train = data.get("train_size")
    if isinstance(size, int) and size and train is not None and size >= train:
        problems.append(
            f"{where}data.validation_size: must leave training images; train_size is "
            f"{train}. Received: validation_size={size!r}"
        )
        return
    info = DATASETS.get(t.get("dataset", ""))
    found: list[str] = []
    if info is not None and info.train_images is not None:
        for value, images, key in (
            (train, info.train_images, "train_size"),
            (data.get("test_size"), info.test_images, "test_size"),
        ):
            found += _refused(check_subset_size, value, images, key)
        total = train or info.train_images
    else:  # generated: any size is made
        total = train or SYNTHETIC_TRAIN
    if not found:
        found = _refused(resolve_count, size, total, "validation_size")
    problems.extend(f"{where}data.{p}" for p in found)


def _refused(rule: Any, *args: Any) -> list[str]:
    try:
        rule(*args)
    except SpecError as e:
        return e.problems
    return []


def _check_resources(
    t: Mapping[str, Any], cluster: tuple[NodeType, ...], where: str, problems: list[str]
) -> None:
    res = t.get("resources", {})
    types = gpu_types(res.get("gpu_type"), where, problems)
    if types and not res.get("gpus", Resources.gpus):
        # The same contradiction [cluster] refuses for a node type: a GPU type, no GPU.
        problems.append(
            f"{where}resources.gpu_type: a trial without GPUs runs on no GPU type; set "
            f"resources.gpus or remove gpu_type. Received: gpu_type={res['gpu_type']!r}, "
            f"gpus={res.get('gpus', Resources.gpus)!r}"
        )
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
