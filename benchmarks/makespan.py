"""Makespan of real job files on a heterogeneous cluster, simulated under honest uncertainty:
orch's policy (profiling every trial's first epochs when trials must wait, then
longest-first by the measured times with GPU-type affinity, and moving running trials to
faster GPUs that free up) vs the same without profiling vs longest-first alone vs FIFO vs
the lower bound, and longest-first ordered by the true durations (what exact estimates
would give).

No Ray and no training. Each trial's true duration is orch's estimate (spec/cost.py) times
a lognormal error (sigma 0.3, one factor per trial, the same on every GPU type). orch
orders by the estimates (order.longest_first, as `orch submit` does) and plans its
GPU-type affinity from them (order.reservations, as its Tune callback does); the
simulation (scheduling/policy/simulate.py) binds each trial to GPU types with the
function that callback calls (placement.choose_types) and runs the true durations; moves
are decided by migrate.choose_moves (the callback's function too) from the estimates and
each trial's true epoch time once it has run an epoch on a type (orch's measured rate);
profiling (policy/profile.py: simulate_profiled, when worth_profiling holds on the
estimates) measures each trial's true rate in its first 2 epochs, then plans from it;
the lower bound is computed from the true durations of each draw. 200 draws; median and
90th percentile.

Cluster: one 4 x GTX 1080 Ti box + one 8 x V100 node. Also: the gain of packing the four
LeNet-tricks rows on one GPU (gpus = 0.25 each) over running them one GPU each in turn.

    python benchmarks/makespan.py [--draws 200] [--sigma 0.3] [--min-gain-s 600] ...
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from orchestrator.scheduling.policy.cluster import NodeInfo
from orchestrator.scheduling.policy.migrate import Rule
from orchestrator.scheduling.policy.order import longest_first, reservations
from orchestrator.scheduling.policy.profile import simulate_profiled
from orchestrator.scheduling.policy.simulate import lower_bound, simulate, slots
from orchestrator.spec.cost import estimate
from orchestrator.spec.load import load_job
from orchestrator.spec.model import Resources, TrialSpec

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = [
    NodeInfo("box", "box", cpus=32, gpus=4, memory_gb=128, gpu_type="gtx-1080-ti"),
    NodeInfo("dgx", "dgx", cpus=64, gpus=8, memory_gb=512, gpu_type="v100"),
]
JOBS = (("full_table", 1), ("full_table", 5), ("densenet_paper", 5), ("lr_schedules", 1))


def trials_of(name: str, seeds: int) -> list[TrialSpec]:
    job = load_job(ROOT / "jobs" / f"{name}.toml")
    if seeds == 1:
        return list(job.trials)
    return [
        replace(t, seed=s, name=f"{t.name}-s{s}", key=f"{t.key}-s{s}")
        for t in job.trials
        for s in range(seeds)
    ]


def estimated(trial: TrialSpec, node: NodeInfo) -> float | None:
    e = estimate(trial, node.gpu_type if trial.resources.gpus else "cpu")
    return None if e is None else e.seconds


def draw(trials: Sequence[TrialSpec], rng: random.Random, sigma: float) -> dict[str, float]:
    return {t.key: rng.lognormvariate(0.0, sigma) for t in trials}


def one_draw(
    trials: list[TrialSpec],
    factor: dict[str, float],
    reserved: Mapping[str, frozenset[str]],
    rule: Rule,
) -> dict[str, float]:
    """One draw of true durations. `reserved`: orch's GPU-type affinity for its launch
    order (order.reservations, from the estimates: the same in every draw)."""

    def true(trial: TrialSpec, node: NodeInfo) -> float | None:
        base = estimated(trial, node)
        return None if base is None else base * factor[trial.key]

    def fastest(trial: TrialSpec) -> float:
        return min(d for d in (true(trial, n) for n in CLUSTER) if d is not None)

    exact = sorted(trials, key=lambda t: -fastest(t))  # stable: ties keep file order
    ordered = longest_first(trials, CLUSTER, {})
    return {
        "bound-moves": lower_bound(trials, CLUSTER, true, whole=False),
        "migrate": simulate(
            ordered, CLUSTER, true, reserved=reserved, migrate=rule, estimated=estimated
        ),
        "bound": lower_bound(trials, CLUSTER, true),
        "orch": simulate_profiled(ordered, CLUSTER, true, estimated, rule),
        "fifo": simulate(trials, CLUSTER, true, reserved={}),
        "lpt": simulate(longest_first(trials, CLUSTER, {}), CLUSTER, true, reserved=reserved),
        "lpt-alone": simulate(longest_first(trials, CLUSTER, {}), CLUSTER, true, reserved={}),
        "exact": simulate(exact, CLUSTER, true, reserved={}),
    }


def summary(values: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def structure(name: str) -> str:
    """Why a job of near-equal trials cannot get near its fluid bound: its places per GPU
    type (simulate.slots) and each trial's hours there."""
    trials = trials_of(name, 1)
    res = trials[0].resources
    places: dict[str, int] = {}
    for n in CLUSTER:
        places[n.gpu_type] = places.get(n.gpu_type, 0) + slots(res, n)
    hours = {
        k: sorted(
            {round((estimated(t, next(n for n in CLUSTER if n.gpu_type == k)) or 0) / 3600, 2)
             for t in trials}
        )
        for k in places
    }  # fmt: skip
    parts = [f"{places[k]} places on {k} at {'/'.join(map(str, h))} h" for k, h in hours.items()]
    return f"{name}: {len(trials)} trials ({res.gpus:g} GPU, {res.cpus:g} CPU each); " + "; ".join(
        parts
    )


def packing_gain() -> tuple[float, float]:
    """(makespan with the four LeNet-tricks rows packed at 0.25 GPU, one at a time at 1 GPU)
    on one GTX 1080 Ti box with one GPU."""
    box = [NodeInfo("one", "one", cpus=32, gpus=1, memory_gb=128, gpu_type="gtx-1080-ti")]
    packed = list(load_job(ROOT / "jobs/lenet_tricks.toml").trials)
    whole = [replace(t, resources=replace(t.resources, gpus=1.0)) for t in packed]
    assert all(isinstance(t.resources, Resources) for t in whole)
    return simulate(packed, box, estimated), simulate(whole, box, estimated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--restart-s", type=float, default=Rule.restart_s)
    parser.add_argument("--min-gain-s", type=float, default=Rule.min_gain_s)
    parser.add_argument("--min-share", type=float, default=Rule.min_share)
    parser.add_argument("--jobs", default="", help="comma-separated job labels (default all)")
    args = parser.parse_args()
    rule = Rule(args.restart_s, args.min_gain_s, args.min_share)
    rng = random.Random(0)
    cluster = " + ".join(f"{n.gpus:g} x {n.gpu_type}" for n in CLUSTER)
    print(f"cluster: {cluster}; lognormal sigma {args.sigma}; {args.draws} draws (seed 0)")
    print(f"migration rule: {rule}\n")
    print(
        "| job | trials | lower bound, h | FIFO | orch: profiling, then longest-first + "
        "GPU-type affinity + migration | orch before profiling (longest-first by the "
        "estimates + affinity + migration) | the same without migration "
        "| longest-first alone | longest-first by the true durations |"
    )
    print("|---|---:|---|---|---|---|---|---|---|")
    below = []
    for name, seeds in JOBS:
        label = f"{name} x {seeds} seeds" if seeds > 1 else name
        trials = trials_of(name, seeds)
        reserved = reservations(longest_first(trials, CLUSTER, {}), CLUSTER)
        draws = [draw(trials, rng, args.sigma) for _ in range(args.draws)]
        if args.jobs and label not in args.jobs.split(","):
            continue  # the same random draws as a full run, for every job
        runs = [one_draw(trials, factor, reserved, rule) for factor in draws]
        bound = summary([r["bound"] / 3600 for r in runs])
        cells = [f"{bound[0]:.1f} (p90 {bound[1]:.1f})"]
        for policy in ("fifo", "orch", "migrate", "lpt", "lpt-alone", "exact"):
            ratio = summary([r[policy] / r["bound"] for r in runs])
            hours = statistics.median(r[policy] for r in runs) / 3600
            cells.append(f"{hours:.1f} h: {ratio[0]:.3f} x (p90 {ratio[1]:.3f} x)")
        print(f"| {label} | {len(trials)} | " + " | ".join(cells) + " |")
        worse = sum(r["orch"] > r["migrate"] + 1e-6 for r in runs)
        better = sum(r["orch"] < r["migrate"] - 1e-6 for r in runs)
        low = min(r["orch"] / r["bound"] for r in runs)
        moves_bound = summary([r["orch"] / r["bound-moves"] for r in runs])
        below.append(
            f"- {label}: profiling shortens {better} and lengthens {worse} of {len(runs)} "
            f"draws; lowest ratio to the bound {low:.3f}; against the bound that holds for "
            f"schedules with moves too (no slot term): {moves_bound[0]:.3f} x "
            f"(p90 {moves_bound[1]:.3f} x)"
        )
    print()
    print("\n".join(below))
    print(
        "\nwith no estimate error (sigma 0): lower bound, orch's longest-first + affinity "
        "(+ migration; + profiling, which then only costs), ratio"
    )
    for name, seeds in JOBS:
        trials = trials_of(name, seeds)
        low = lower_bound(trials, CLUSTER, estimated)
        ordered = longest_first(trials, CLUSTER, {})
        span = simulate(ordered, CLUSTER, estimated)
        moved = simulate(ordered, CLUSTER, estimated, migrate=rule, estimated=estimated)
        profiled = simulate_profiled(ordered, CLUSTER, estimated, estimated, rule)
        label = f"{name} x {seeds} seeds" if seeds > 1 else name
        print(
            f"- {label}: {low / 3600:.2f} h, {span / 3600:.2f} h ({moved / 3600:.2f} h; "
            f"{profiled / 3600:.2f} h), {span / low:.3f} x ({moved / low:.3f} x; "
            f"{profiled / low:.3f} x)"
        )
    print(structure("lr_schedules"))
    packed, whole = packing_gain()
    print(
        f"\npacking the 4 LeNet-tricks rows on one GTX 1080 Ti: {packed / 3600:.2f} h at "
        f"gpus = 0.25 (all four at once) vs {whole / 3600:.2f} h at gpus = 1 (one after "
        f"another): {whole / packed:.1f} x shorter"
    )


if __name__ == "__main__":
    main()
