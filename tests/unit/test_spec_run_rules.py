"""What `orch validate` accepts is what trains (issue 12 §1) and what breaks at run time is
refused by validate (issue 15 §4): each rule has one copy, run by both sides."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec.load import load_job, parse_job
from orchestrator.spec.schedule import (
    CosineSchedule,
    PlateauConfig,
    PlateauSchedule,
    StepSchedule,
    WarmupSchedule,
    parse_schedule,
)
from orchestrator.training.optimizers import validate_optimizer
from tests.conftest import run_orch

HEAD = '[job]\nname = "r"\n[defaults]\ndataset = "digits"\nepochs = 2\n'
LENET = '[[trial]]\nmodel = "lenet5"\n'


def _trial(text: str, tmp_path: Path):
    path = tmp_path / "job.toml"
    path.write_text(HEAD + text)
    return load_job(path).trials


def _problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "job.toml"
    path.write_text(HEAD + text)
    with pytest.raises(SpecError) as err:
        load_job(path)
    return err.value.problems


# ------------------------------------------------------------------ adamw (the regression)


def test_adamw_with_the_default_mode_validates_and_decays_in_the_optimizer(tmp_path: Path) -> None:
    (trial,) = _trial(LENET + 'recipe = { optimizer = "adamw", lr = 0.001 }\n', tmp_path)
    assert trial.recipe.weight_decay == 1e-4
    assert trial.recipe.weight_decay_mode == "decoupled"
    # ... and the trial's own builder accepts exactly this recipe
    r = trial.recipe
    validate_optimizer(
        r.optimizer,
        lr=r.lr,
        momentum=r.momentum,
        nesterov=r.nesterov,
        weight_decay=r.weight_decay,
        weight_decay_mode=r.weight_decay_mode,
    )


def test_adamw_without_decay_keeps_l2_so_its_key_never_moved(tmp_path: Path) -> None:
    (trial,) = _trial(LENET + 'recipe = { optimizer = "adamw", weight_decay = 0.0 }\n', tmp_path)
    assert trial.recipe.weight_decay_mode == "l2"


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_sgd_and_adam_keep_the_seeds_l2(optimizer: str, tmp_path: Path) -> None:
    (trial,) = _trial(LENET + f'recipe = {{ optimizer = "{optimizer}" }}\n', tmp_path)
    assert trial.recipe.weight_decay_mode == "l2"


def test_adamw_with_explicit_l2_is_refused_by_validate_with_the_fix(tmp_path: Path) -> None:
    (msg,) = _problems(
        LENET + 'recipe = { optimizer = "adamw", weight_decay_mode = "l2" }\n', tmp_path
    )
    assert msg.startswith(f'{tmp_path / "job.toml"}: trial "lenet5": recipe.weight_decay_mode:')
    assert 'weight_decay_mode = "decoupled"' in msg and "Received: weight_decay_mode='l2'" in msg


RECIPES = [
    {"optimizer": "sgd", "lr": 0.1},
    {"optimizer": "adamw", "lr": 0.1, "weight_decay_mode": "l2"},
    {"optimizer": "adamw", "lr": 0.1, "weight_decay_mode": "l2", "weight_decay": 0.0},
    {"optimizer": "adam", "lr": 0.0},
    {"optimizer": "sgd", "lr": 0.1, "momentum": 1.0},
    {"optimizer": "sgdd", "lr": 0.1},
    {"optimizer": "sgd", "lr": 0.1, "weight_decay": -1.0},
    {"optimizer": "sgd", "lr": 0.1, "weight_decay_mode": "l3"},
    {"optimizer": "adam", "lr": 0.1, "weight_decay_mode": "decoupled"},
]


@pytest.mark.parametrize("recipe", RECIPES)
def test_validate_and_the_trials_optimizer_agree(recipe: dict) -> None:
    """One rule, two callers: the job file refuses a recipe iff the builder would."""
    raw = {
        "job": {"name": "r"},
        "trial": [{"model": "lenet5", "dataset": "digits", "epochs": 1, "recipe": recipe}],
    }
    try:
        parse_job(raw, "r.toml")
        spec_ok = True
    except SpecError:
        spec_ok = False
    from orchestrator.spec.model import Recipe

    kind = recipe["optimizer"]
    defaults = {k: getattr(Recipe, k) for k in ("momentum", "nesterov", "weight_decay")}
    kwargs = {**defaults, **{k: v for k, v in recipe.items() if k != "optimizer"}}
    if "weight_decay_mode" not in kwargs:  # as the spec resolves it
        kwargs["weight_decay_mode"] = "l2" if kind != "adamw" else "decoupled"
    try:
        validate_optimizer(kind, **kwargs)
        run_ok = True
    except SpecError:
        run_ok = False
    assert spec_ok == run_ok


# ------------------------------------------------------------------ the schedule, parsed once


def test_the_schedule_is_parsed_once_into_a_frozen_value(tmp_path: Path) -> None:
    text = (
        LENET + 'recipe = { schedule = { kind = "cosine", warmup_epochs = 1 } }\n'
        '[[trial]]\nname = "p"\nmodel = "lenet5"\n'
        'recipe = { schedule = { kind = "plateau", patience = 3 } }\n'
        '[[trial]]\nname = "s"\nmodel = "lenet5"\n'
        'recipe = { schedule = { kind = "step", boundaries = [1], values = [0.1, 0.01] } }\n'
        '[[trial]]\nname = "c"\nmodel = "lenet5"\n'
    )
    cosine, plateau, step, constant = _trial(text, tmp_path)
    assert cosine.recipe.lr_schedule == WarmupSchedule(CosineSchedule(0.1, 2), 1, 0.1)
    assert plateau.recipe.lr_schedule == PlateauConfig(lr=0.1, patience=3)
    assert step.recipe.lr_schedule == StepSchedule((1,), (0.1, 0.01))
    assert constant.recipe.lr_schedule is None
    for t in (cosine, plateau, step):
        assert dataclasses.is_dataclass(t.recipe.lr_schedule)
        hash(t.recipe.lr_schedule)  # frozen
        assert t.recipe.lr_schedule == parse_schedule(
            t.recipe.schedule_dict, epochs=t.epochs, lr=t.recipe.lr
        )


def test_the_trial_runs_the_specs_schedule_without_parsing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.spec import schedule
    from orchestrator.training import loop

    (plateau,) = _trial(LENET + 'recipe = { schedule = { kind = "plateau" } }\n', tmp_path)
    (cosine,) = _trial(LENET + 'recipe = { schedule = { kind = "cosine" } }\n', tmp_path)

    def no_parsing(*a: object, **k: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(schedule, "parse_schedule", no_parsing)
    monkeypatch.setattr("orchestrator.training.schedules.parse_schedule", no_parsing)
    assert loop._schedule(cosine) is cosine.recipe.lr_schedule
    running = loop._schedule(plateau)
    assert isinstance(running, PlateauSchedule) and running.config is plateau.recipe.lr_schedule
    assert loop._schedule(plateau) is not running  # a fresh state per run, never shared


def test_the_parsed_schedule_is_not_a_setting(tmp_path: Path) -> None:
    """It is derived: neither the key, the name templates nor MLflow's params see it."""
    from orchestrator.spec.keys import key_material

    (trial,) = _trial(LENET + 'recipe = { schedule = { kind = "cosine" } }\n', tmp_path)
    assert "lr_schedule" not in key_material(trial)["recipe"]
    problems = _problems('[[trial]]\nname = "{recipe.lr_schedule}"\nmodel = "lenet5"\n', tmp_path)
    assert "is no key of the trial" in problems[0]


# ------------------------------------------------------------------ MLflow params


def test_mlflow_params_are_the_flattened_resolved_trial(tmp_path: Path) -> None:
    from orchestrator.tracking.mlflow_store import _params

    (trial,) = _trial(LENET + 'model_args = { kernel_initializer = "he_uniform" }\n', tmp_path)
    names = [p.key for p in _params(trial)]
    assert names == list(dict.fromkeys(names))  # each once
    assert set(names) == {
        "model", "dataset", "epochs", "batch_size", "seed", "optimizer", "lr", "momentum",
        "nesterov", "weight_decay", "weight_decay_mode", "schedule", "preprocess", "augment",
        "precision", "xla", "validation_size", "train_size", "test_size", "gpus", "cpus",
        "model.kernel_initializer",
    }  # fmt: skip


def test_a_new_recipe_field_is_one_edit(tmp_path: Path) -> None:
    """The field with its rule: the schema, MLflow's params and the key follow from it."""
    from orchestrator.spec import schema as s
    from orchestrator.spec.keys import trial_key
    from orchestrator.spec.model import Recipe, rules
    from orchestrator.tracking.mlflow_store import _params

    (trial,) = _trial(LENET, tmp_path)
    smoothing = dataclasses.field(default=0.0, metadata={"rule": s.is_number(ge=0, lt=1)})
    wider = dataclasses.make_dataclass(
        "WiderRecipe", [("label_smoothing", float, smoothing)], bases=(Recipe,), frozen=True
    )
    problems: list[str] = []
    s.validate_table({"label_smoothing": 1.5}, s.Table(rules(wider)), "", "recipe", problems)
    assert problems == ["recipe.label_smoothing: must be < 1. Received: label_smoothing=1.5"]
    values = {f.name: getattr(trial.recipe, f.name) for f in dataclasses.fields(Recipe)}
    same = dataclasses.replace(trial, recipe=wider(**values))
    assert trial_key(same) == trial.key  # at its default: no key moves
    smoothed = dataclasses.replace(trial, recipe=wider(**values, label_smoothing=0.1))
    assert trial_key(smoothed) != trial.key
    params = {p.key: p.value for p in _params(smoothed)}
    assert params["label_smoothing"] == "0.1"


# ------------------------------------------------------------------ issue 15 §4: the corpus

BAD: list[tuple[str, str, list[str]]] = [
    ("seed past 2**32", LENET + "seed = 4294967296\n",
     ["seed: must be <= 4294967295", "4294967296"]),
    ("seeds past 2**32", LENET + "seeds = [0, 4294967296]\n", ["seeds:", "0..4294967295"]),
    ("name of 201 characters", f'[[trial]]\nname = "{"n" * 201}"\nmodel = "lenet5"\n',
     ["name: must be at most 200 characters", "not 201"]),
    ("name of 200 characters but seeds", f'[[trial]]\nname = "{"n" * 197}"\nmodel = "lenet5"\n'
     "seeds = [0, 10]\n", ["name with the seed suffix '-s10': must be at most 200 characters"]),
    ("name past 200 bytes", f'[[trial]]\nname = "{"é" * 101}"\nmodel = "lenet5"\n',
     ["must be at most 200 bytes in UTF-8", "not 202"]),
    ("NUL in a trial name", '[[trial]]\nname = "a\\u0000b"\nmodel = "lenet5"\n',
     ["name: must not contain control characters", "'\\x00' at position 1"]),
    ("escape in a grid name",
     '[[grid]]\nname = "{model}\\u001b]0;x"\naxes = { model = ["lenet5"] }\n',
     ["grid #1", "name: must not contain control characters"]),
    ("bidi override in a trial name", '[[trial]]\nname = "ab\\u202ecd"\nmodel = "lenet5"\n',
     ["name: must not contain invisible or text-direction characters", "'\\u202e' at position 2"]),
    ("zero-width space in a grid name",
     '[[grid]]\nname = "{model}\\u200b"\naxes = { model = ["lenet5"] }\n',
     ["grid #1", "invisible or text-direction characters"]),
    ("epochs past 32 bits (the ledger's INTEGER)", LENET + "epochs = 3000000000\n",
     ["epochs: must be <= 100000", "epochs=3000000000"]),
    ("a million epochs", LENET + "epochs = 1000000\n", ["epochs: must be <= 100000"]),
    ("batch size past any dataset", LENET + "batch_size = 3000000000\n",
     ["batch_size: must be <= 1000000"]),
    ("max_retries past Ray's counter", LENET + "resources = { max_retries = 9999999999999 }\n",
     ["resources.max_retries: must be <= 1000"]),
    ("unknown kernel_initializer", LENET + 'model_args = { kernel_initializer = "he_normall" }\n',
     ["model_args: lenet5: kernel_initializer: unknown initializer", "Did you mean: he_normal"]),
    ("bad initializer config", LENET + "model_args = { kernel_initializer = "
     '{ class_name = "VarianceScaling", config = { mode = "fan_x" } } }\n',
     ["kernel_initializer: VarianceScaling takes", "check mode"]),
    ("gpu_type without gpus", LENET + 'resources = { gpu_type = "A100" }\n',
     ["resources.gpu_type: a trial without GPUs", "gpu_type='A100', gpus=0.0",
      "set resources.gpus or remove gpu_type"]),
    ("growth_rate 100000", '[[trial]]\nmodel = "densenet"\nmodel_args = { depth = 40, '
     "growth_rate = 100000 }\n", ["model_args.growth_rate: must be <= 256", "growth_rate=100000"]),
    ("resnet depth 6e8", '[[trial]]\nmodel = "resnet"\nmodel_args = { depth = 600000002 }\n',
     ["model_args.depth: must be <= 2000", "depth=600000002"]),
    ("densenet blocks 1e9", '[[trial]]\nmodel = "densenet"\nmodel_args = { depth = 40, '
     "num_blocks = 1000000000 }\n", ["model_args.num_blocks: must be <= 16"]),
    ("layers_per_block long list", '[[trial]]\nmodel = "densenet"\nmodel_args = { '
     f"layers_per_block = {[1] * 17} }}\n", ["model_args.layers_per_block: at most 16 entries"]),
    ("train_size past the split", LENET + "data = { train_size = 1439 }\n",
     ["data.train_size: must be a whole number in 1..1438", "train_size=1439"]),
    ("test_size past the split", LENET + "data = { test_size = 360 }\n",
     ["data.test_size: must be a whole number in 1..359"]),
    ("validation takes every image", LENET + "data = { validation_size = 1438 }\n",
     ["data.validation_size: must leave at least one training image"]),
    ("validation fraction rounds to all", LENET + "data = { validation_size = 0.9999 }\n",
     ["data.validation_size: must leave at least one training image"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragments"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_by_validate(text: str, fragments: list[str], tmp_path: Path) -> None:
    started = time.monotonic()
    problems = _problems(text, tmp_path)
    assert time.monotonic() - started < 10  # never a hang, whatever the numbers
    assert len(problems) == 1, problems
    assert problems[0].startswith(str(tmp_path / "job.toml") + ": ")
    for fragment in fragments:
        assert fragment in problems[0]


def test_seed_at_the_limit_and_long_names_at_the_limit_are_fine(tmp_path: Path) -> None:
    trials = _trial(
        LENET + "seed = 4294967295\n"
        f'[[trial]]\nname = "{"n" * 197}"\nmodel = "lenet5"\nseeds = [0, 9]\n',
        tmp_path,
    )
    assert trials[0].seed == 2**32 - 1 and len(trials[-1].name) == 200


def test_a_job_name_that_no_ledger_takes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text(f'[job]\nname = "{"j" * 201}"\n' + HEAD.split("\n", 2)[2] + LENET)
    with pytest.raises(SpecError, match=r"job.name: must be at most 200 characters"):
        load_job(path)


def test_gpu_type_any_without_gpus_is_fine(tmp_path: Path) -> None:
    (trial,) = _trial(LENET + 'resources = { gpu_type = "any" }\n', tmp_path)
    assert trial.resources.gpu_type == ()


def test_grids_are_counted_before_they_expand() -> None:
    """100 grids of 10,000 cells: refused by counting, without building a million trials."""
    axis = [round(1e-4 * (i + 1), 6) for i in range(10_000)]
    grids = [
        {"name": f"g{i}-{{recipe.lr}}", "model": "lenet5", "axes": {"recipe.lr": axis}}
        for i in range(100)
    ]
    raw = {"job": {"name": "big"}, "defaults": {"dataset": "digits", "epochs": 1}, "grid": grids}
    started = time.monotonic()
    with pytest.raises(SpecError) as err:
        parse_job(raw, "big.toml")
    assert time.monotonic() - started < 60  # the first grid (10,000 trials) is still built
    (msg,) = err.value.problems  # one message, not one per grid
    assert msg.startswith('big.toml: grid #2 "g1-{recipe.lr}": makes up to 10000 trials')
    assert "would pass 10000 trials" in msg


def test_trial_tables_are_counted_before_they_are_checked() -> None:
    """20,000 [[trial]] tables: refused by counting them, in bounded time (each one checked,
    and the trials counted again per table, took minutes)."""
    trial = {"model": "lenet5", "dataset": "digits", "epochs": 1}
    raw = {"job": {"name": "many"}, "trial": [{**trial, "seed": i} for i in range(20_000)]}
    started = time.monotonic()
    with pytest.raises(SpecError) as err:
        parse_job(raw, "many.toml")
    assert time.monotonic() - started < 5
    (msg,) = err.value.problems
    assert msg == (
        "many.toml: has 20000 [[trial]] tables, more than 10000 trials; split the job or use "
        "a [[grid]]."
    )


def test_trials_before_a_grid_are_counted_once() -> None:
    """9,999 trials, then a grid of 2: the count grows as blocks are read (a sum over all
    cells per block was quadratic: ~50 million steps at the limit)."""
    trial = {"model": "lenet5", "dataset": "digits", "epochs": 1}
    grid = {"model": "lenet5", "dataset": "digits", "epochs": 2, "seeds": [1, 2]}
    trials = [{**trial, "name": f"t{i}", "seed": i} for i in range(9_999)]
    raw = {"job": {"name": "m"}, "trial": trials, "grid": [grid]}
    started = time.monotonic()
    with pytest.raises(SpecError, match="grid #1: makes up to 2 trials, and with the 9999"):
        parse_job(raw, "m.toml")
    assert time.monotonic() - started < 30


def test_a_grid_with_seeds_counts_its_seeds() -> None:
    axes = {"recipe.lr": [0.1, 0.2], "batch_size": list(range(1, 5001))}
    grid = {"model": "lenet5", "repeats": 3, "axes": axes}
    raw = {"job": {"name": "s"}, "defaults": {"dataset": "digits", "epochs": 1}, "grid": [grid]}
    with pytest.raises(SpecError, match="makes up to 30000 trials"):
        parse_job(raw, "s.toml")


def test_plan_answers_in_bounded_time_for_any_model_argument(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(HEAD + '[[trial]]\nmodel = "resnet"\nmodel_args = { depth = 600000002 }\n')
    started = time.monotonic()
    result = run_orch("plan", str(path), timeout=120)
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "model_args.depth: must be <= 2000" in lines[0]
    assert "Traceback" not in result.stderr
