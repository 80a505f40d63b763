"""Ready for a real GPU: measured figures beside the cost model's predictions, in one table.

On one NVIDIA GPU (within 8 minutes with the defaults):
  1. ResNet-20 training images/s (batch 128, synthetic in-memory batch): float32 and
     mixed_float16, XLA off and on;
  2. the input pipeline's images/s (orch's tf.data, standard augmentation) with the trial's
     --cpus CPUs (a child process whose TensorFlow thread pools orch's setup_tensorflow sizes
     for them, as in a trial), and its ratio to the GPU's float32 rate (>= 1: fed);
  3. four packed trials at gpus = 0.25 (each its own process with the hard memory limit of
     training/hardware.py), at the same time: total images/s and each one's peak memory;
and beside each the cost model's prediction (spec/cost.py) for the detected GPU type.

    python benchmarks/gpu_check.py            # on the GPU
    python benchmarks/gpu_check.py --cpu      # anywhere (CI): same table, on the CPU
    python benchmarks/gpu_check.py --backend jax   # a GPU machine without TensorFlow

`--backend jax` runs the same zoo model through Keras 3 on its JAX backend, for machines
whose image has JAX but no TensorFlow (TF 2.21's CUDA 12 wheels are ~2 GB). It measures the
GPU side only: always compiled by XLA (Keras' JAX backend without jit runs op by op, no
fair "XLA off"), float32, mixed_float16 and mixed_bfloat16; the packed processes' hard
memory limit is JAX's XLA_PYTHON_CLIENT_MEM_FRACTION (its pool, the analogue of the
TensorFlow logical device orch gives a packed trial); orch's input pipeline is tf.data, so
it is not measured there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


MODEL = "resnet20"  # --model: a smaller net for the CPU test
BACKEND = "tensorflow"  # --backend; "jax" sets KERAS_BACKEND before keras is imported


def resnet20_trial(batch: int, cpus: float, gpus: float = 1.0, precision: str = "float32"):
    from orchestrator.spec.load import parse_job

    job = parse_job(
        {"trial": [{"name": "r20", "model": MODEL, "dataset": "cifar10", "epochs": 1,
                    "batch_size": batch, "recipe": {"precision": precision},
                    "resources": {"gpus": gpus, "cpus": cpus}}]},
        "gpu_check.toml",
    )  # fmt: skip
    return job.trials[0]


def predicted_rate(batch: int, gpu_type: str, cpus: float, gpus: float, precision: str) -> float:
    from orchestrator.spec.cost import estimate

    e = estimate(resnet20_trial(batch, cpus, gpus, precision), gpu_type)
    return batch / e.step_s if e else float("nan")


def train_rate(batch: int, steps: int, precision: str, xla: bool) -> tuple[float, float]:
    """(images/s of ResNet-20 training steps, peak device memory MB) in this process."""
    import keras
    import numpy as np

    from orchestrator.zoo import create_model

    keras.mixed_precision.set_global_policy(precision)
    model = create_model(MODEL)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
        jit_compile=xla,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch)
    if BACKEND == "jax":  # the same batch repeated, from host arrays (no tf.data there)

        def fit(n: int) -> None:
            model.fit(np.tile(x, (n, 1, 1, 1)), np.tile(y, n), batch_size=batch, epochs=1,
                      verbose=0, shuffle=False)  # fmt: skip
    else:
        import tensorflow as tf

        data = tf.data.Dataset.from_tensors((x, y)).cache()

        def fit(n: int) -> None:
            model.fit(data.repeat(n), epochs=1, verbose=0)

    fit(3)  # trace, compile
    start = time.perf_counter()
    fit(steps)
    rate = steps * batch / (time.perf_counter() - start)
    keras.mixed_precision.set_global_policy("float32")
    return rate, peak_memory_mb()


def peak_memory_mb() -> float:
    if BACKEND == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20
    else:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process, MB


def pipeline_rate(cpus: int, images: int, batch: int) -> dict:
    """The input pipeline's images/s (orch's tf.data, standard augmentation) with the
    trial's `cpus` CPUs: {"rate", "cpus", "intra_op", "inter_op"}. Measured in a child
    process whose TensorFlow orch's setup_tensorflow configures for `cpus` CPUs, as in a
    trial (this process's thread pools are fixed by its training runs); GPUs hidden there,
    as tf.data runs on the CPU."""
    cmd = [sys.executable, __file__, "--pipeline-worker", "--cpus", str(cpus),
           "--images", str(images), "--batch", str(batch)]  # fmt: skip
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode:
        raise SystemExit(f"pipeline worker failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pipeline_worker(args: argparse.Namespace) -> None:
    """The child of pipeline_rate: TensorFlow set up for the trial's CPUs, then 2 epochs
    of the standard pipeline over random CIFAR-sized images (the first one traces)."""
    import numpy as np

    from benchmarks.input_pipeline import limit_to_trial_cpus
    from benchmarks.input_pipeline import pipeline_rate as epoch_rates
    from orchestrator.data import Split

    intra, inter = limit_to_trial_cpus(args.cpus)  # before any other TensorFlow use
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
    split = Split(x, rng.integers(0, 10, args.images), None)
    rate = epoch_rates(split, "standard", repeats=1, batch=args.batch)[-1]
    print(json.dumps({"rate": rate, "cpus": args.cpus, "intra_op": intra, "inter_op": inter}))


def worker(args: argparse.Namespace) -> None:
    """One packed trial: hard memory limit of its fraction, then ResNet-20 steps."""
    if BACKEND == "jax":  # the pool's size is set in the environment (packed())
        rate, peak = train_rate(args.batch, args.steps, "float32", True)
    else:
        from orchestrator.training.hardware import setup_tensorflow

        setup_tensorflow(cpus=args.cpus, precision="float32", seed=0, gpu_fraction=args.fraction)
        rate, peak = train_rate(args.batch, args.steps, "float32", False)
    print(json.dumps({"rate": rate, "peak_mb": peak, "end": time.time()}))


def packed(args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    cmd = [sys.executable, __file__, "--worker", "--fraction", "0.25", "--batch",
           str(args.batch), "--steps", str(args.steps), "--cpus", str(args.cpus),
           "--model", MODEL, "--backend", BACKEND]  # fmt: skip
    if BACKEND == "jax":  # a preallocated pool of orch's packed limit per process
        from orchestrator.training.hardware import gpu_total_mb, packed_memory_limit_mb

        total = gpu_total_mb()
        limit = packed_memory_limit_mb(args.fraction, total) if total else None
        share = f"{limit / total:.4f}" if limit and total else str(args.fraction)
        env = dict(env, XLA_PYTHON_CLIENT_MEM_FRACTION=share, XLA_PYTHON_CLIENT_PREALLOCATE="true")
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        if p.returncode:
            raise SystemExit(f"packed worker failed: {stderr[-2000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def gpu_name() -> tuple[str, str]:
    from orchestrator.scheduling.policy.gputypes import slug

    if BACKEND == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "gpu":
            return "CPU", "cpu"
        return device.device_kind, slug(device.device_kind)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU", "cpu"
    name = str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"))
    return name, slug(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (hides GPUs)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--cpus", type=int, default=4, help="the trial's CPUs")
    parser.add_argument("--images", type=int, default=20_000, help="pipeline epoch size")
    parser.add_argument("--model", default="resnet20", help="zoo preset (default resnet20)")
    parser.add_argument("--xla", choices=("both", "off"), default="both")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                        help="Keras backend (jax: GPU side only, always XLA)")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fraction", type=float, default=0.25, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global MODEL, BACKEND
    MODEL, BACKEND = args.model, args.backend
    os.environ["KERAS_BACKEND"] = BACKEND
    if BACKEND == "jax" and not args.worker:  # leave the GPU to the packed processes' pools
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path)
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = env["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = env["JAX_PLATFORMS"] = "cpu"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if args.worker:
        worker(args)
        return
    if args.pipeline_worker:
        pipeline_worker(args)
        return
    begin = time.perf_counter()
    name, gpu_type = gpu_name()
    rows: list[tuple[str, str, str]] = []
    fp32, fp32_model = None, float("nan")
    jax = BACKEND == "jax"
    precisions = ("float32", "mixed_float16") + (("mixed_bfloat16",) if jax else ())
    xlas = (True,) if jax else (False, True) if args.xla == "both" else (False,)
    for precision in precisions:
        for xla in xlas:
            rate, peak = train_rate(args.batch, args.steps, precision, xla)
            model = predicted_rate(args.batch, gpu_type, args.cpus, 1.0, precision)
            if precision == "float32" and fp32 is None:
                fp32, fp32_model = rate, model
            label = f"{MODEL} train, {precision}, XLA {'on' if xla else 'off'}"
            rows.append((label, f"{rate:,.0f} img/s", f"{model:,.0f} img/s (XLA not modelled)"
                         if xla else f"{model:,.0f} img/s"))  # fmt: skip
            if jax:  # one process: the pool's peak so far is this run's or an earlier one's
                rows.append(("  peak GPU memory so far, MB", f"{peak:,.0f}", ""))
    from orchestrator.spec.cost import PIPELINE_PER_CORE

    if jax:
        rows.append(("input pipeline (tf.data)", "not measured: no TensorFlow here", ""))
    else:
        pipe = pipeline_rate(args.cpus, args.images, args.batch)
        cores = os.cpu_count() or 1
        over = f"; only {cores} cores here" if args.cpus > cores else ""
        cpus = f"{pipe['cpus']} CPU{'s' if pipe['cpus'] != 1 else ''}"
        modelled = PIPELINE_PER_CORE["standard"] * args.cpus
        rows.append((f"input pipeline, standard aug, the trial's {cpus} (TF pools: "
                     f"{pipe['intra_op']} intra-op, {pipe['inter_op']} inter-op threads{over})",
                     f"{pipe['rate']:,.0f} img/s",
                     f"{modelled:,.0f} img/s with the trial's {cpus}"))  # fmt: skip
        assert fp32 is not None
        rows.append(("pipeline / GPU float32 rate", f"{pipe['rate'] / fp32:.2f}",
                     f"{modelled / fp32_model:.2f}; >= 1 keeps the GPU fed"))  # fmt: skip
    jobs = packed(args, env)
    total = sum(j["rate"] for j in jobs)
    model = 4 * predicted_rate(args.batch, gpu_type, args.cpus, 0.25, "float32")
    rows.append(
        ("4 packed trials at gpus = 0.25, total", f"{total:,.0f} img/s", f"{model:,.0f} img/s")
    )
    from orchestrator.spec.cost import peak_memory_gb

    limit = peak_memory_gb(resnet20_trial(args.batch, args.cpus, 0.25))
    peaks = ", ".join(f"{j['peak_mb']:,.0f}" for j in jobs)
    what = "GPU memory peak" if gpu_type != "cpu" else "process RSS peak (CPU)"
    rows.append((f"packed trials, each: {what}, MB", peaks, f"{limit * 1024:,.0f} MB (estimate)"))
    import keras

    stack = f"Keras {keras.__version__} on {BACKEND}"
    print(f"### gpu_check: {name} ({gpu_type}), {stack}, batch {args.batch}, {args.steps} steps, "
          f"{args.cpus} trial CPUs; {time.perf_counter() - begin:.0f} s\n")  # fmt: skip
    print("| measurement | measured | cost model |")
    print("|---|---|---|")
    for label, measured, predicted in rows:
        print(f"| {label} | {measured} | {predicted} |")
    spread = statistics.pstdev(j["rate"] for j in jobs) / (total / 4)
    print(f"\npacked trials' rates differ by {spread:.0%} (std / mean).")


if __name__ == "__main__":
    main()
