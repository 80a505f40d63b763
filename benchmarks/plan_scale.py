"""A 10,000-trial grid (models x lr x weight decay x seeds): how long `orch validate` and
`orch plan` take end to end (fresh processes, imports included). Target: < 10 s each.

    python benchmarks/plan_scale.py [--trials-per-axis 10] [--repeats 3]

The grid: 10 models x 10 learning rates x 10 weight decays x 10 seeds on CIFAR-10, one GPU
each, with a declared 4 x GTX 1080 Ti + 8 x V100 cluster so that `plan` also simulates the
makespan of all 10,000 trials.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORCH = str(Path(sys.executable).with_name("orch"))
MODELS = ["lenet5", "nin", "vgg19", "resnet20", "resnet32", "resnet56", "resnet110",
          "wrn_16_8", "densenet_bc_100_12", "resnext29_4x64d"]  # fmt: skip


def grid(n: int) -> str:
    lrs = ", ".join(f"{0.01 * (i + 1):.2f}" for i in range(n))
    wds = ", ".join(f"{1e-5 * (i + 1):.0e}" for i in range(n))
    models = ", ".join(f'"{m}"' for m in MODELS[:n])
    return f"""
[job]
name = "scale"
[defaults]
dataset = "cifar10"
epochs = 30
batch_size = 128
seeds = {list(range(n))}
resources = {{ gpus = 1, cpus = 4 }}

[[grid]]
[grid.axes]
model = [{models}]
"recipe.lr" = [{lrs}]
"recipe.weight_decay" = [{wds}]

[[cluster.node_type]]
name = "1080ti-box"
gpu_type = "GTX 1080 Ti"
gpus = 4
cpus = 32
memory_gb = 128

[[cluster.node_type]]
name = "v100-node"
gpu_type = "V100"
gpus = 8
cpus = 64
memory_gb = 512
"""


def timed(*args: str, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stdout): on a shared, loaded machine the CPU time is
    what the command costs; the wall time is what waiting on it cost here."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([ORCH, *args], capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"orch {' '.join(args)} failed: {proc.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials-per-axis", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.trials_per_axis
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp, "scale.toml")
        job.write_text(grid(n))
        env = {**os.environ, "ORCH_HOME": str(Path(tmp, ".orch")), "COLUMNS": "200"}
        results = {}
        for command in (("validate",), ("plan", "--format", "json")):
            times, cpus, out = [], [], ""
            for _ in range(args.repeats):
                seconds, cpu, out = timed(*command, str(job), env=env)
                times.append(seconds)
                cpus.append(cpu)
            results[command[0]] = (times, cpus, out)
    trials = n**4
    load = os.getloadavg()[0]
    print(f"{trials:,} trials ({n} models x {n} lr x {n} wd x {n} seeds); "
          f"{os.cpu_count()} cores, 1-min load {load:.1f}\n")  # fmt: skip
    print("| command | wall s, median (min-max) | CPU s, median | target < 10 s |")
    print("|---|---|---|---|")
    for name, (times, cpus, _) in results.items():
        wall, cpu = statistics.median(times), statistics.median(cpus)
        verdict = (
            f"wall {'meets' if wall < 10 else 'MISSES'}, CPU {'meets' if cpu < 10 else 'MISSES'}"
        )
        print(f"| orch {name} | {wall:.1f} ({min(times):.1f}-{max(times):.1f}) | {cpu:.1f} "
              f"| {verdict} |")  # fmt: skip
    import json

    total = json.loads(results["plan"][2])["total"]
    print(f"\nplan: {total['gpu_hours']:,.0f} GPU-hours; makespan {total['makespan_h']:,.0f} h "
          f"(longest-first) vs lower bound {total['lower_bound_h']:,.0f} h")  # fmt: skip


if __name__ == "__main__":
    main()
