"""The makespan simulation and its lower bound (scheduling/policy/simulate.py): the bound
never exceeds the best schedule there is (brute force on small grids), it counts rounds of
whole trials, and the simulation binds trials to GPU types with orch's own function."""

from __future__ import annotations

import itertools
import random

import pytest

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.order import reservations
from orchestrator.scheduling.policy.simulate import Duration, lower_bound, simulate, slots
from orchestrator.spec.load import parse_job
from orchestrator.spec.model import TrialSpec

TI = "gtx-1080-ti"


def node(name: str, gpu_type: str, gpus: float, cpus: float = 64) -> NodeInfo:
    return NodeInfo(name, name, cpus=cpus, gpus=gpus, memory_gb=512, gpu_type=gpu_type)


def trials(n: int, gpus: float = 1, cpus: float = 1, gpu_type: object = "any") -> list[TrialSpec]:
    job = parse_job(
        {
            "defaults": {"dataset": "cifar10", "epochs": 10, "model": "resnet20"},
            "trial": [
                {"name": f"t{i}", "seed": i,
                 "resources": {"gpus": gpus, "cpus": cpus, "gpu_type": gpu_type}}
                for i in range(n)
            ],
        },
        "j.toml",
    )  # fmt: skip
    return list(job.trials)


Times = dict[str, dict[str, float]]


def table(times: Times) -> Duration:
    """A duration function from {trial name: {GPU type: seconds}}."""
    return lambda t, n: times[t.name].get(n.gpu_type)


def best_schedule(jobs: list[TrialSpec], places: list[str], times: Times) -> float:
    """The optimum by brute force: every assignment of trials to places (one trial at a
    time on each), each place running its trials back to back."""
    best = float("inf")
    for assignment in itertools.product(range(len(places)), repeat=len(jobs)):
        load = [0.0] * len(places)
        for t, p in zip(jobs, assignment, strict=True):
            load[p] += times[t.name][places[p]]
        best = min(best, max(load))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_the_bound_never_exceeds_the_best_schedule(seed: int) -> None:
    rng = random.Random(seed)
    gpus = rng.choice([1.0, 0.5])
    jobs = trials(rng.randint(3, 6), gpus=gpus)
    speedup = rng.uniform(1.0, 2.0)
    times = {}
    for t in jobs:
        slow = rng.lognormvariate(0, 0.6) * 100
        times[t.name] = {TI: slow, "v100": slow / speedup}
    nodes = [node("v", "v100", 1), node("t", TI, rng.choice([1, 2]))]
    places = [n.gpu_type for n in nodes for _ in range(slots(jobs[0].resources, n))]
    optimum = best_schedule(jobs, places, times)
    bound = lower_bound(jobs, nodes, table(times))
    assert bound <= optimum * (1 + 1e-9)
    assert simulate(jobs, nodes, table(times)) >= bound * (1 - 1e-9)


def test_the_bound_counts_rounds_of_whole_trials() -> None:
    """lr_schedules' shape: 30 equal trials at half a GPU and 4 CPUs on 4 slow + 8 fast GPUs
    take 24 places; 6 places run two in a row. The fluid bound (the work spread evenly)
    would say 2.53 h; no schedule beats two fast trials back to back, 3.68 h."""
    jobs = trials(30, gpus=0.5, cpus=4)
    nodes = [node("box", TI, 4, cpus=32), node("dgx", "v100", 8, cpus=64)]
    assert [slots(jobs[0].resources, n) for n in nodes] == [8, 16]
    times = {t.name: {TI: 2.53, "v100": 1.84} for t in jobs}
    assert lower_bound(jobs, nodes, table(times)) == pytest.approx(3.68)
    assert simulate(jobs, nodes, table(times)) == pytest.approx(3.68)


def test_the_bound_is_the_longest_trial_when_it_dominates() -> None:
    jobs = trials(3)
    times = {"t0": {TI: 50.0, "v100": 40.0}, "t1": {TI: 1.0, "v100": 1.0}, "t2": {TI: 1.0}}
    nodes = [node("v", "v100", 2), node("t", TI, 2)]
    assert lower_bound(jobs, nodes, table(times)) == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("preference", "hours"), [(["GTX 1080 Ti", "V100"], 10.0), (["V100", "GTX 1080 Ti"], 5.0)]
)
def test_the_simulation_binds_trials_as_orch_does(preference: list[str], hours: float) -> None:
    """`gpu_type = ["GTX 1080 Ti", "V100"]`: orch binds the trial to a free 1080 Ti even
    though a V100 would finish it sooner, and so does the simulation (it calls
    placement.choose_types, the function orch's Tune callback calls)."""
    (job,) = trials(1, gpu_type=preference)
    nodes = [node("t", TI, 1), node("v", "v100", 1)]
    times = {"t0": {TI: 10.0, "v100": 5.0}}
    assert simulate([job], nodes, table(times)) == hours


def test_the_simulation_binds_past_a_preferred_type_out_of_cpus() -> None:
    """Two half-GPU trials preferring the V100, whose node has one CPU: the second is bound
    to the 1080 Ti and runs beside the first, as orch binds it (room_by_type), instead of
    waiting for the V100 node's CPU."""
    jobs = trials(2, gpus=0.5, cpus=1, gpu_type=["V100", "GTX 1080 Ti"])
    nodes = [node("v", "v100", 1, cpus=1), node("t", TI, 1, cpus=4)]
    times = {t.name: {TI: 8.0, "v100": 5.0} for t in jobs}
    placed: dict[str, str] = {}
    assert simulate(jobs, nodes, table(times), placed=placed) == 8.0  # not 5 + 5
    assert sorted(placed.values()) == [TI, "v100"]


def test_a_custom_binding_is_obeyed_and_a_trial_waits_for_its_types() -> None:
    """Bound to the V100 only, the second trial waits for the first to end there rather
    than start on the free 1080 Ti."""
    jobs = trials(2)
    nodes = [node("t", TI, 1), node("v", "v100", 1)]
    times = {t.name: {TI: 10.0, "v100": 4.0} for t in jobs}
    assert simulate(jobs, nodes, table(times)) == 10.0  # the second runs on the 1080 Ti
    assert simulate(jobs, nodes, table(times), bind=lambda t, n, free, off: ["v100"]) == 8.0


def test_a_long_trial_the_plan_puts_on_the_fast_type_waits_for_it() -> None:
    """GPU-type affinity (order.reservations): planned from the estimates, the long trials
    the estimated schedule runs on the V100 are kept off the slower 1080 Ti; the one it
    runs on the 1080 Ti keeps it. When the 1080 Ti frees first (here because the first
    V100 trial runs long), a kept-off trial waits for the V100, and without affinity it
    would take the 1080 Ti."""
    big, mid, small = trials(3)
    nodes = [node("t", TI, 1), node("v", "v100", 1)]
    estimates = {"t0": {TI: 11.2, "v100": 8.0}, "t1": {TI: 8.4, "v100": 6.0}}
    estimates["t2"] = {TI: 7.0, "v100": 5.0}
    order = [big, mid, small]
    kept_off = reservations(order, nodes, duration=table(estimates))
    assert kept_off == {big.key: frozenset({TI}), small.key: frozenset({TI})}
    true = {**estimates, "t0": {TI: 16.8, "v100": 12.0}}  # the first trial runs long
    assert simulate(order, nodes, table(true), reserved={}) == pytest.approx(8.4 + 7.0)
    assert simulate(order, nodes, table(true), reserved=kept_off) == pytest.approx(12 + 5)


def test_the_tune_callback_binds_with_the_same_affinity() -> None:
    """Placement (the Tune callback) plans the same reservations from the cost model: a
    long trial created with no GPU free is bound to the V100 alone, a short one to both."""
    from orchestrator.scheduling.adapters.placement import Placement

    job = parse_job(
        {
            "defaults": {"dataset": "cifar10", "epochs": 200, "resources": {"gpus": 1}},
            "trial": [
                {"name": "long-a", "model": "resnet110"},
                {"name": "long-b", "model": "resnet110", "seed": 1},
                {"name": "long-c", "model": "resnet110", "seed": 2},
                {"name": "short", "model": "lenet5", "epochs": 1},
            ],
        },
        "j.toml",
    )
    specs = {t.key: t for t in job.trials}  # in launch order
    nodes = [node("t", TI, 1), node("v", "v100", 1)]
    planned = reservations(job.trials, nodes)
    *_, c, short = job.trials
    assert planned[c.key] == frozenset({TI}) and short.key not in planned
    callback = Placement(specs, lambda: nodes, free=lambda _: {TI: 0.0, "v100": 0.0})
    assert callback.types_for(c.key) == ["v100"]
    assert callback.types_for(short.key) == ["v100", TI]
