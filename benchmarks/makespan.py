"""Makespan of jobs/full_table.toml on a described heterogeneous cluster, simulated:
orch's longest-first order vs FIFO (file order) vs the lower bound.

No Ray and no training: trial durations come from orch's cost model (spec/cost.py MACs x
images x epochs x 3, over the per-GPU-type speed prior of scheduling/gputypes.py), and a
list scheduler places each trial, in queue order, on the fastest free node type that can
hold it (all its GPUs on one node), as Ray does with orch's placement groups.

    python benchmarks/makespan.py [JOB.toml] [SEEDS]

SEEDS repeats every trial with that many seeds (default 5: the table with error bars),
so the grid has more trials than the cluster has GPUs and the order matters.
"""

from __future__ import annotations

import heapq
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.scheduling.cluster import NodeInfo
from orchestrator.scheduling.feasibility import fits
from orchestrator.scheduling.order import estimated_seconds, longest_first, speed_of
from orchestrator.spec.cost import estimate_cost
from orchestrator.spec.load import load_job
from orchestrator.spec.model import TrialSpec

# The described cluster: one 4 x GTX 1080 Ti box and one 8-GPU V100 node.
CLUSTER = [
    NodeInfo("box", "box", cpus=32, gpus=4, memory_gb=128, gpu_type="gtx-1080-ti"),
    NodeInfo("dgx", "dgx", cpus=64, gpus=8, memory_gb=512, gpu_type="v100"),
]


@dataclass
class Node:
    info: NodeInfo
    free: float


def duration_on(trial: TrialSpec, node: NodeInfo) -> float:
    return estimated_seconds(trial, [node], {})


def simulate(queue: list[TrialSpec]) -> float:
    """List scheduling: whenever GPUs free up, start the first queued trial that fits a
    node now (fastest such node), like Ray placing pending placement groups in order."""
    nodes = [Node(n, n.gpus) for n in CLUSTER]
    pending = list(queue)
    running: list[tuple[float, int, Node, float]] = []  # (end, seq, node, gpus)
    now, seq = 0.0, 0
    while pending or running:
        started = True
        while started:
            started = False
            for trial in pending:
                options = [
                    n
                    for n in nodes
                    if fits(trial.resources, n.info) and n.free >= trial.resources.gpus
                ]
                if not options:
                    continue
                best = min(options, key=lambda n: duration_on(trial, n.info))
                best.free -= trial.resources.gpus
                heapq.heappush(
                    running, (now + duration_on(trial, best.info), seq, best, trial.resources.gpus)
                )
                seq += 1
                pending.remove(trial)
                started = True
                break
        if not running:
            raise RuntimeError(f"{[t.name for t in pending]} can never run on this cluster")
        now, _, node, gpus = heapq.heappop(running)
        node.free += gpus
    return now


def lower_bound(trials: list[TrialSpec]) -> float:
    """max(total work / total capacity, the longest trial on its fastest node)."""
    capacity = sum(speed_of(n.gpu_type, {}) * n.gpus for n in CLUSTER)
    work = sum(estimate_cost(t) for t in trials)
    longest = max(min(duration_on(t, n) for n in CLUSTER if fits(t.resources, n)) for t in trials)
    return max(work / capacity, longest)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "jobs/full_table.toml")
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    job = load_job(path)
    trials = [replace(t, seed=s, name=f"{t.name}-s{s}") for t in job.trials for s in range(seeds)]
    fifo = simulate(trials)
    lpt = simulate(longest_first(trials, CLUSTER, {}))
    bound = lower_bound(trials)
    print(
        f"job {job.name} x {seeds} seeds: {len(trials)} trials on "
        + " + ".join(f"{n.gpus:g} x {n.gpu_type}" for n in CLUSTER)
    )
    for label, value in (
        ("lower bound", bound),
        ("FIFO (file order)", fifo),
        ("orch longest-first", lpt),
    ):
        print(f"  {label:20s} {value / 3600:8.1f} h   {value / bound:5.3f} x bound")


if __name__ == "__main__":
    main()
