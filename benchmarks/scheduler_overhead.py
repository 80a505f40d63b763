"""orch's scheduling overhead per trial on the local cluster, with short trials.

Two measurements in one run, on one embedded local Ray (2 CPUs, 1 CPU per trial):
  1. bare Ray Tune: N trials of a function that reports once and returns;
  2. `orch submit` of N one-epoch trials on 64 synthetic images (lenet5), with everything
     orch adds: ledger, MLflow runs and metrics, keyed checkpoints, a fresh process per
     trial with TensorFlow, feasibility and ordering.
Overhead per trial = (wall time x concurrency - compute time reported by the trials) / N.

    python benchmarks/scheduler_overhead.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CONCURRENCY = 2


def bare_tune(n: int, storage: str) -> float:
    from ray import tune

    def noop(config: dict) -> None:
        tune.report({"x": config["i"]})

    t0 = time.perf_counter()
    tune.Tuner(
        tune.with_resources(noop, {"cpu": 1}),
        param_space={"i": tune.grid_search(list(range(n)))},
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    return time.perf_counter() - t0


def orch_submit(n: int, home: Path) -> tuple[float, float]:
    from orchestrator.config import workspace
    from orchestrator.ledger import Ledger
    from orchestrator.scheduling.submit import submit
    from orchestrator.spec.load import parse_job

    raw = {
        "job": {"name": "overhead"},
        "defaults": {
            "dataset": "synthetic",
            "data": {"train_size": 64, "test_size": 32},
            "epochs": 1,
            "batch_size": 32,
            "model": "lenet5",
            "recipe": {"lr": 0.01, "augment": "none"},
            "resources": {"cpus": 1},
        },
        "trial": [{"name": f"t{i}", "seed": i} for i in range(n)],
    }
    job = parse_job(raw, "overhead.toml")
    ws = workspace(home)
    t0 = time.perf_counter()
    outcome = submit(job, ws)
    wall = time.perf_counter() - t0
    assert outcome.ok, outcome
    view = Ledger(ws.ledger_url).job("overhead")
    compute = sum(t.train_time_s or 0.0 for t in view.trials)  # type: ignore[union-attr]
    return wall, compute


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        ray.init(
            address="local", num_cpus=CONCURRENCY, include_dashboard=False, log_to_driver=False
        )
        bare = bare_tune(n, str(Path(tmp, "tune")))
        wall, compute = orch_submit(n, Path(tmp, ".orch"))
        ray.shutdown()
    print(f"{n} trials, {CONCURRENCY} at a time, on {os.cpu_count()} CPUs")
    print(
        f"  bare Ray Tune (no-op trials):  {bare:7.1f} s wall, "
        f"{bare * CONCURRENCY / n:6.2f} s per trial-slot"
    )
    print(f"  orch submit (1-epoch trials):  {wall:7.1f} s wall, {compute:6.1f} s compute")
    over = (wall * CONCURRENCY - compute) / n
    print(
        f"  orch overhead per trial:       {over:6.2f} s "
        f"(bare Tune's share: {bare * CONCURRENCY / n:.2f} s)"
    )


if __name__ == "__main__":
    main()
