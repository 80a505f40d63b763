"""Learning-rate schedules against the seeds' reference values (0-based epochs)."""

from __future__ import annotations

import json
import math

import pytest

from orchestrator.errors import SpecError
from orchestrator.training.schedules import (
    SCHEDULE_KINDS,
    ConstantSchedule,
    CosineSchedule,
    HTDSchedule,
    PlateauConfig,
    PlateauSchedule,
    Schedule,
    StepSchedule,
    WarmupSchedule,
    schedule_from_dict,
)

RESNET = {"kind": "step", "boundaries": [81, 122], "values": [0.1, 0.01, 0.001], "boundary": "lt"}
NIN = {"kind": "step", "boundaries": [80, 140], "values": [0.01, 0.005, 0.001], "boundary": "le"}


@pytest.mark.parametrize(
    ("epoch", "lr"), [(0, 0.1), (80, 0.1), (81, 0.01), (121, 0.01), (122, 0.001), (199, 0.001)]
)
def test_step_lt_matches_resnet(epoch: int, lr: float) -> None:
    assert schedule_from_dict(RESNET).lr_at(epoch) == lr


@pytest.mark.parametrize(
    ("epoch", "lr"), [(0, 0.01), (80, 0.01), (81, 0.005), (140, 0.005), (141, 0.001)]
)
def test_step_le_matches_nin(epoch: int, lr: float) -> None:
    assert schedule_from_dict(NIN).lr_at(epoch) == lr


def test_boundary_semantics_differ_by_exactly_one_epoch() -> None:
    lt = StepSchedule((81,), (0.1, 0.01), "lt")
    le = StepSchedule((81,), (0.1, 0.01), "le")
    assert [lt.lr_at(e) for e in (80, 81, 82)] == [0.1, 0.01, 0.01]
    assert [le.lr_at(e) for e in (80, 81, 82)] == [0.1, 0.1, 0.01]


def test_step_values_from_lr_and_factor_wrn() -> None:
    wrn = schedule_from_dict(
        {"kind": "step", "boundaries": [60, 120, 160], "lr": 0.1, "factor": 0.2}
    )
    assert [wrn.lr_at(e) for e in (59, 60, 120, 160)] == pytest.approx([0.1, 0.02, 0.004, 0.0008])


@pytest.mark.parametrize(
    ("epoch", "lr"),
    [(0, 0.1000), (50, 0.0999), (100, 0.0953), (122, 0.0735), (150, 0.0182), (199, 0.00027)],
)
def test_htd_reference_values(epoch: int, lr: float) -> None:
    htd = schedule_from_dict({"kind": "htd", "lr": 0.1, "epochs": 200})
    assert htd.lr_at(epoch) == pytest.approx(lr, abs=5e-5 if epoch < 199 else 5e-6)


def test_cosine_is_htd_papers_cos() -> None:
    cos = schedule_from_dict({"kind": "cosine"}, epochs=200, lr=0.1)
    for epoch in (0, 1, 50, 100, 150, 199):
        assert cos.lr_at(epoch) == pytest.approx(0.05 * (1 + math.cos(math.pi * epoch / 200)))
    assert CosineSchedule(0.1, 10, end_lr=0.01).lr_at(10) == pytest.approx(0.01)


def test_warmup_ramps_then_follows_inner() -> None:
    inner = StepSchedule((81, 122), (0.1, 0.01, 0.001))
    warm = WarmupSchedule(inner, epochs=5, start_factor=0.2)
    assert [warm.lr_at(e) for e in range(6)] == pytest.approx(
        [0.02, 0.036, 0.052, 0.068, 0.084, 0.1]
    )
    assert warm.lr_at(100) == inner.lr_at(100)
    built = schedule_from_dict({**RESNET, "warmup_epochs": 5, "warmup_start_factor": 0.2})
    assert built == warm


def test_defaults_from_trial_do_not_override_the_table() -> None:
    htd = schedule_from_dict({"kind": "htd", "lr": 0.05, "epochs": 100}, epochs=200, lr=0.1)
    assert htd == HTDSchedule(0.05, 100)
    assert schedule_from_dict({"kind": "constant"}, lr=0.3) == ConstantSchedule(0.3)
    # The spec layer injects the trial lr into every table; step ignores it given values.
    assert schedule_from_dict({**RESNET, "lr": 0.5}).lr_at(0) == 0.1


def test_plateau_reduces_after_patience_and_respects_min_lr() -> None:
    plateau = PlateauSchedule(PlateauConfig(lr=0.1, factor=0.5, patience=2, min_lr=0.03))
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    lrs = [plateau.observe(e, {"val_loss": v}) for e, v in enumerate(losses)]
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03])
    assert plateau.lr_at(8) == 0.03


def test_plateau_auto_mode_maximises_accuracy() -> None:
    plateau = schedule_from_dict(
        {"kind": "plateau", "lr": 0.1, "monitor": "val_accuracy", "patience": 1, "factor": 0.1}
    )
    assert plateau.observe(0, {"val_accuracy": 0.5}) == 0.1
    assert plateau.observe(1, {"val_accuracy": 0.6}) == 0.1  # improved: no drop
    assert plateau.observe(2, {"val_accuracy": 0.55}) == pytest.approx(0.01)


def test_plateau_state_round_trip_resumes_identically() -> None:
    config = PlateauConfig(lr=0.1, factor=0.5, patience=3, cooldown=1)
    metrics = [1.0, 0.9, 0.91, 0.92, 0.93, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85]
    straight = PlateauSchedule(config)
    expected = [straight.observe(e, {"val_loss": m}) for e, m in enumerate(metrics)]

    first = PlateauSchedule(config)
    for e, m in enumerate(metrics[:4]):
        first.observe(e, {"val_loss": m})
    saved = json.loads(json.dumps(first.state()))  # what a checkpoint stores
    resumed = PlateauSchedule.from_state(config, saved)
    tail = [resumed.observe(e, {"val_loss": m}) for e, m in enumerate(metrics[4:], start=4)]
    assert tail == expected[4:]
    assert resumed.state() == straight.state()


def test_plateau_missing_monitor_is_a_clear_error() -> None:
    plateau = PlateauSchedule(PlateauConfig(lr=0.1, monitor="val_loss"))
    with pytest.raises(KeyError, match="val_loss"):
        plateau.observe(0, {"loss": 1.0})


def test_every_kind_builds_and_is_a_schedule() -> None:
    tables = {
        "constant": {"lr": 0.1},
        "step": {"boundaries": [1], "values": [0.1, 0.01]},
        "cosine": {"lr": 0.1, "epochs": 10},
        "htd": {"lr": 0.1, "epochs": 10},
        "plateau": {"lr": 0.1},
    }
    assert set(tables) == set(SCHEDULE_KINDS)
    for kind, table in tables.items():
        schedule = schedule_from_dict({"kind": kind, **table})
        assert isinstance(schedule, Schedule)
        assert schedule.lr_at(0) > 0


@pytest.mark.parametrize(
    ("table", "fragments"),
    [
        ({"kind": "stepp"}, ["kind", "'stepp'", "Did you mean: step"]),
        ({}, ["kind", "missing"]),
        (
            {"kind": "step", "boundaries": [122, 81], "values": [0.1, 0.01, 0.001]},
            ["boundaries", "[122, 81]"],
        ),
        (
            {"kind": "step", "boundaries": [81, 122], "values": [0.1, 0.01]},
            ["values", "[0.1, 0.01]"],
        ),
        (
            {"kind": "step", "boundaries": [81], "values": [0.1, 0.1], "boundary": "lte"},
            ["boundary", "'lte'"],
        ),
        ({"kind": "htd", "lr": -0.1, "epochs": 200}, ["lr: must be > 0", "lr=-0.1"]),
        ({"kind": "htd", "lr": 0.1}, ["epochs: missing"]),
        ({"kind": "cosine", "lr": 0.1, "epochs": 2.5}, ["epochs", "2.5"]),
        ({"kind": "cosine", "lr": 0.1, "epochs": 10, "end_lr": 0.2}, ["end_lr", "0.2"]),
        ({"kind": "plateau", "lr": 0.1, "factor": 1.5}, ["factor", "1.5"]),
        ({"kind": "plateau", "lr": 0.1, "warmup_epochs": 2}, ["warmup_epochs", "unknown key"]),
        ({"kind": "htd", "lr": 0.1, "epochs": 10, "epoch": 3}, ["epoch", "Did you mean: epochs"]),
        ({"kind": "constant", "lr": True}, ["lr", "True"]),
    ],
)
def test_validation_names_key_and_value(table: dict, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as err:
        schedule_from_dict(table)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_all_problems_reported_together() -> None:
    with pytest.raises(SpecError) as err:
        schedule_from_dict({"kind": "cosine", "lr": 0, "epochs": 0, "end": 1})
    keys = {p.split(":")[0] for p in err.value.problems}
    assert keys == {"lr", "epochs", "end"}


@pytest.mark.parametrize(
    ("table", "alias", "key"),
    [
        ({"kind": "step", "milestones": [81, 122], "values": [0.1, 0.01, 0.001]},
         "milestones", "boundaries"),
        ({"kind": "step", "boundaries": [5], "lr": 0.1, "gamma": 0.1}, "gamma", "factor"),
        ({"kind": "cosine", "lr": 0.1, "epochs": 10, "eta_min": 0.0}, "eta_min", "end_lr"),
    ],
)  # fmt: skip
def test_another_librarys_name_is_one_problem_naming_orchs_key(
    table: dict, alias: str, key: str
) -> None:
    """PyTorch's names for a key are one problem that names orch's key and the line to
    write, not also a second "missing" problem for the key they stand for."""
    with pytest.raises(SpecError) as err:
        schedule_from_dict(table)
    assert len(err.value.problems) == 1, err.value.problems
    (problem,) = err.value.problems
    assert problem.startswith(f"{alias}: unknown key")
    assert f"write {key} = {table[alias]!r}" in problem


def test_an_alias_beside_its_key_is_an_unknown_key() -> None:
    """With the real key present, the alias is just a stray key (no rename to suggest)."""
    with pytest.raises(SpecError) as err:
        schedule_from_dict({**RESNET, "milestones": [1]})
    assert err.value.problems == [
        "milestones: unknown key for a step schedule; expected one of kind, boundaries, "
        "values, boundary, lr, factor, warmup_epochs, warmup_start_factor."
    ]


def test_schedules_import_no_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, orchestrator.training.schedules; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
