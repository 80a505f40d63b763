"""The cost model (spec/cost.py): hours and gigabytes from the zoo's counting walk on a
roofline of published GPU figures, checked against the seed's published 1080 Ti times."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import InfeasibleError
from orchestrator.report.table import parse_duration
from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.feasibility import check_feasible, fits_trial
from orchestrator.scheduling.policy.gputypes import memory_gb, slug, spec
from orchestrator.scheduling.policy.simulate import lower_bound, simulate
from orchestrator.spec.cost import estimate, learned_key, peak_memory_gb
from orchestrator.spec.load import load_job
from orchestrator.spec.model import Resources

ROOT = Path(__file__).resolve().parents[2]


def seed_rows() -> list:
    trials = [*load_job(ROOT / "jobs/full_table.toml").trials]
    trials += load_job(ROOT / "jobs/lenet_tricks.toml").trials
    return [t for t in trials if t.reference.time]


def seed_gpu(trial) -> str:
    return slug(trial.reference.gpu.split(" x ")[0])


def test_estimates_of_the_seed_table_meet_the_goal() -> None:
    """Issue 13 §1: median |error| <= 25 %, none off by more than 2x, against the seed's
    published times, with the seed's own input pipeline (Keras 2 ImageDataGenerator)."""
    ratios = {}
    for t in seed_rows():
        e = estimate(t, seed_gpu(t), pipeline="seed-keras2")
        ratios[t.name] = e.seconds / parse_duration(t.reference.time)
    assert len(ratios) >= 13
    assert statistics.median(abs(r - 1) for r in ratios.values()) <= 0.25, ratios
    assert all(0.5 < r < 2.0 for r in ratios.values()), ratios


def test_lenet_is_input_bound_and_wide_nets_are_not() -> None:
    rows = {t.model: t for t in seed_rows()}
    assert estimate(rows["lenet5"], "gtx-1080-ti", pipeline="seed-keras2").input_bound
    assert not estimate(rows["wrn_28_10"], "gtx-1080-ti").input_bound


def test_faster_types_are_faster_and_pascal_half_precision_is_slow() -> None:
    wrn = next(t for t in seed_rows() if t.model == "wrn_28_10")
    ti, a100 = estimate(wrn, "gtx-1080-ti"), estimate(wrn, "a100")
    assert a100.seconds < ti.seconds / 2
    mixed = replace(wrn, recipe=replace(wrn.recipe, precision="mixed_float16"))
    assert estimate(mixed, "a100").seconds < a100.seconds
    assert estimate(mixed, "gtx-1080-ti").seconds > ti.seconds  # FP16 at 1/64 rate
    assert estimate(wrn, "h100").seconds < estimate(wrn, "v100").seconds


def test_memory_counts_batch_precision_and_optimizer() -> None:
    wrn = next(t for t in seed_rows() if t.model == "wrn_28_10")
    base = peak_memory_gb(wrn)
    assert 2 < base < 11  # the seed trained it on an 11 GB card
    half = peak_memory_gb(replace(wrn, batch_size=64))
    assert half < base and base - half > 0.3 * (base - 1)
    mixed = replace(wrn, recipe=replace(wrn.recipe, precision="mixed_float16"))
    assert peak_memory_gb(mixed) < base
    adam = replace(wrn, recipe=replace(wrn.recipe, optimizer="adam"))
    assert peak_memory_gb(adam) - base == pytest.approx(4 * 36_479_194 / 1e9, rel=0.05)


def test_learned_ratio_scales_the_estimate_per_family_and_type() -> None:
    r20 = next(t for t in seed_rows() if t.model == "resnet20")
    base = estimate(r20, "v100")
    key = learned_key(r20, "v100")
    assert key == "resnet@v100"
    slower = estimate(r20, "v100", learned={key: 2.0})
    assert slower.seconds > 1.5 * base.seconds
    assert estimate(r20, "v100", learned={"resnet@a100": 2.0}).seconds == base.seconds


def test_gpu_specs_and_memory_from_detailed_names() -> None:
    assert memory_gb("a100-sxm4-80gb") == 80 and spec("a100-sxm4-80gb").bandwidth_gbs > 2000
    assert memory_gb("a100") == 40 and memory_gb("gtx-1080-ti") == 11
    assert memory_gb("mystery-card", 24.0) == 24
    assert memory_gb("cpu") == 0


def test_a_trial_that_fits_no_gpu_memory_is_refused_with_the_figure() -> None:
    r20 = next(t for t in seed_rows() if t.model == "resnet20")
    huge = replace(r20, batch_size=16_384)
    ti = NodeInfo("a", "a", cpus=32, gpus=4, memory_gb=128, gpu_type="gtx-1080-ti")
    big = NodeInfo("b", "b", cpus=32, gpus=4, memory_gb=128, gpu_type="x", gpu_memory_gb=200)
    assert not fits_trial(huge, ti) and fits_trial(huge, big)
    check_feasible([huge], [ti, big])  # the 200 GB type holds it
    with pytest.raises(InfeasibleError) as err:
        check_feasible([huge], [ti])
    assert "needs about" in str(err.value) and "gtx-1080-ti with 11 GB" in str(err.value)
    assert not fits_trial(r20, big, excluded={"x"})


def test_packing_a_fraction_of_a_gpu_limits_its_memory() -> None:
    r20 = next(t for t in seed_rows() if t.model == "resnet20")
    packed = replace(r20, resources=Resources(gpus=0.25, cpus=2), batch_size=2048)
    t4 = NodeInfo("a", "a", cpus=32, gpus=1, memory_gb=64, gpu_type="t4")
    assert peak_memory_gb(packed) > 16 * 0.25
    assert not fits_trial(packed, t4)
    assert fits_trial(replace(packed, resources=Resources(gpus=1, cpus=2)), t4)


def test_simulated_makespan_is_at_least_the_lower_bound() -> None:
    trials = [replace(t, seed=s) for t in seed_rows() for s in range(3)]
    nodes = [
        NodeInfo("a", "a", cpus=32, gpus=4, memory_gb=128, gpu_type="gtx-1080-ti"),
        NodeInfo("b", "b", cpus=64, gpus=8, memory_gb=512, gpu_type="v100"),
    ]

    def duration(t, n):
        return estimate(t, n.gpu_type).seconds

    bound = lower_bound(trials, nodes, duration)
    assert simulate(trials, nodes, duration) >= bound * (1 - 1e-9)
