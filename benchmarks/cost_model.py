"""orch's cost model against the seed's published GTX 1080 Ti training times.

Every row of jobs/full_table.toml and jobs/lenet_tricks.toml: orch's estimate of the
seed's run (its GPU, batch, epochs and its Keras 2 ImageDataGenerator input pipeline),
the published time, the error, whether the estimate is input-bound, and orch's estimate
of its own run (tf.data over the trial's CPUs). Goal (issue 13): median |error| <= 25 %,
none off by more than 2x. Pure: no TensorFlow, no GPU.

    python benchmarks/cost_model.py
"""

from __future__ import annotations

import statistics
from pathlib import Path

from orchestrator.report.table import format_duration, parse_duration
from orchestrator.scheduling.policy.gputypes import slug
from orchestrator.spec.cost import LAYER_OVERHEAD_S, estimate
from orchestrator.spec.load import load_job

ROOT = Path(__file__).resolve().parents[1]
JOBS = ("full_table", "lenet_tricks")


def main() -> None:
    print(f"Framework time per layer and step: {LAYER_OVERHEAD_S * 1e6:.0f} us (calibrated on "
          "Residual-Network110's row, the only row used).\n")  # fmt: skip
    print("| job | row | GPU | seed's run, estimated | published | error | bound by | "
          "orch's own run, estimated |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---|---:|")
    errors = []
    for name in JOBS:
        for t in load_job(ROOT / "jobs" / f"{name}.toml").trials:
            gpu = (t.reference.gpu or "GTX 1080 Ti").split(" x ")[0]
            seed = estimate(t, slug(gpu), pipeline="seed-keras2")
            own = estimate(t, slug(gpu))
            published = parse_duration(t.reference.time)
            error = "-"
            if published:
                ratio = seed.seconds / published
                errors.append(ratio)
                error = f"{ratio - 1:+.0%}"
            what = "CPU augmentation" if t.recipe.augment != "none" else "CPU, no augmentation"
            bound = f"input ({what})" if seed.input_bound else "GPU"
            devices = f" x {t.resources.gpus:g}" if t.resources.gpus > 1 else ""
            print(f"| {name} | {t.name} | {gpu}{devices} | {format_duration(seed.seconds)} | "
                  f"{t.reference.time or '-'} | {error} | {bound} | "
                  f"{format_duration(own.seconds)} |")  # fmt: skip
    median = statistics.median(abs(r - 1) for r in errors)
    worst = max(max(r, 1 / r) for r in errors)
    print(f"\n{len(errors)} rows with a published time: median |error| {median:.0%}, "
          f"worst {worst:.2f}x off (goal: <= 25 %, none > 2x).")  # fmt: skip


if __name__ == "__main__":
    main()
