"""Is the input pipeline fast enough to keep each GPU type fed, with the trial's CPUs?

Measures, on this machine's CPU, with TensorFlow configured as orch configures a trial with
`--cpus` CPUs (training/hardware.py's setup_tensorflow: the intra-op pool = the CPUs, the
inter-op pool = min(2, CPUs); tf.data's map runs on those pools):
  1. images/s the training pipeline delivers (orch's make_train_pipeline, batch 128, 32x32x3,
     a CIFAR-sized 50,000-image array, one full epoch per repeat, per augmentation;
     "standard" is the target) and so images/s per CPU core;
  2. the seed's own Keras 2 ImageDataGenerator (flip + shift on the CPU with scipy, one
     thread as fit_generator's default workers=1), for the cost model's comparison with
     the seed's times;
and, per GPU type of the cost model (spec/cost.py), the ResNet-20 training images/s it
predicts on that GPU, the ratio pipeline(standard, the trial's CPUs) / that GPU rate
(>= 1: the GPU stays fed) and the cores the standard pipeline needs to keep it fed. The
ratio is taken against the GPU's training rate, never against a training step on this CPU.

    .venv/bin/python benchmarks/input_pipeline.py [--cpus 4] [--data synthetic|digits]
        [--repeats 3] [--images 50000] [--augment standard ...]

Prints a Markdown block for benchmarks/RESULTS.md ("## Input pipeline").
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time

import numpy as np

from orchestrator.data import Split, load_dataset

BATCH = 128
CIFAR_TRAIN = 50_000
AUGMENTATIONS = ("none", "standard", "standard_reflect", "padcrop")


def limit_to_trial_cpus(cpus: int) -> tuple[int, int]:
    """Configure this process's TensorFlow as orch configures a trial with `cpus` CPUs
    (training/hardware.setup_tensorflow), before any other TensorFlow use. Returns the
    (intra-op, inter-op) pool sizes TensorFlow then reports: the threads tf.data runs on."""
    from orchestrator.training.hardware import setup_tensorflow

    setup_tensorflow(cpus=cpus, precision="float32", seed=0)
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    return intra, tf.config.threading.get_inter_op_parallelism_threads()


def cifar_sized(data: str, images: int = CIFAR_TRAIN) -> Split:
    """An `images`-image uint8 training split: generated, or digits tiled to that size."""
    if data == "synthetic":
        return load_dataset("synthetic", train_size=images, test_size=100).train
    digits = load_dataset("digits").train
    reps = -(-images // len(digits))
    x = np.concatenate([digits.x] * reps)[:images]
    y = np.concatenate([digits.y] * reps)[:images]
    return Split(x, y, digits.stats)


def pipeline_rate(split: Split, augment: str, repeats: int, batch: int = BATCH) -> list[float]:
    """images/s of full epochs (epoch 0 is a warm-up: it traces the graph)."""
    from orchestrator.data import make_train_pipeline

    rates = []
    for epoch in range(repeats + 1):
        pipeline = make_train_pipeline(
            split, batch_size=batch, epoch=epoch, seed=0, preprocess="meanstd",
            augment=augment, dataset="synthetic",
        )  # fmt: skip
        start, seen = time.perf_counter(), 0
        for _, labels in pipeline:
            seen += int(labels.shape[0])
        if epoch:
            rates.append(seen / (time.perf_counter() - start))
    return rates


def seed_generator_rate(split: Split, batches: int = 40) -> float:
    """images/s of the seed's Keras 2 ImageDataGenerator (keras.src.legacy), one thread."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    x = split.x[:10_000].astype("float32")
    y = np.zeros((len(x), 10), "float32")
    generator = ImageDataGenerator(
        horizontal_flip=True, width_shift_range=0.125, height_shift_range=0.125,
        fill_mode="constant", cval=0.0,
    ).flow(x, y, batch_size=BATCH)  # fmt: skip
    next(generator)
    start = time.perf_counter()
    seen = sum(len(next(generator)[0]) for _ in range(batches))
    return seen / (time.perf_counter() - start)


def gpu_demand(pipe: float, cpus: int) -> list[tuple[str, float, float, float]]:
    """Per GPU type of the cost model: (type, the ResNet-20 training images/s it predicts
    there, pipe / that rate, cores to feed it), `pipe` measured with the trial's `cpus`."""
    from orchestrator.scheduling.policy.gputypes import SPECS
    from orchestrator.spec.cost import estimate
    from orchestrator.spec.load import parse_job

    job = parse_job(
        {"trial": [{"name": "r20", "model": "resnet20", "dataset": "cifar10", "epochs": 1,
                    "batch_size": BATCH, "resources": {"gpus": 1, "cpus": cpus}}]},
        "resnet20.toml",
    )  # fmt: skip
    trial, per_core = job.trials[0], pipe / cpus
    out = []
    for gpu_type in SPECS:
        e = estimate(trial, gpu_type)
        assert e is not None, gpu_type
        rate = BATCH / e.step_s
        out.append((gpu_type, rate, pipe / rate, rate / per_core))
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{cpu}, {os.cpu_count()} cores, {gpus} GPU, TF {tf.__version__}"


def main() -> None:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cpus",
        type=int,
        default=min(4, cores),
        help=f"the trial's CPUs (default min(4, cores here) = {min(4, cores)})",
    )
    parser.add_argument("--data", choices=("synthetic", "digits"), default="synthetic")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per augmentation")
    parser.add_argument("--images", type=int, default=CIFAR_TRAIN, help="epoch size")
    parser.add_argument("--augment", nargs="+", choices=AUGMENTATIONS, default=AUGMENTATIONS,
                        help="augmentations to measure (standard always is)")  # fmt: skip
    args = parser.parse_args()
    if not 1 <= args.cpus <= cores:
        parser.error(f"--cpus {args.cpus}: this machine has {cores} cores")

    load_before = os.getloadavg()[0]
    intra, inter = limit_to_trial_cpus(args.cpus)  # before any other TensorFlow use
    split = cifar_sized(args.data, args.images)
    augments = [a for a in AUGMENTATIONS if a in args.augment or a == "standard"]
    pipe = {aug: pipeline_rate(split, aug, args.repeats) for aug in augments}
    seed_rate = seed_generator_rate(split)
    standard = statistics.median(pipe["standard"])
    from orchestrator.spec.cost import PIPELINE_PER_CORE

    # Other processes on the machine slow the pipeline; the load average says how much.
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    cpus = f"{args.cpus} CPU{'s' if args.cpus != 1 else ''}"
    print(f"### {dt.date.today().isoformat()}: {machine()}")
    print(f"data: {args.data}, {len(split):,} images 32x32x3, batch {BATCH}, preprocess "
          f"meanstd; the trial's {cpus} (setup_tensorflow: intra-op {intra}, inter-op "
          f"{inter} threads); median of {args.repeats} (min-max); {load}\n")  # fmt: skip
    print(f"| measurement | images/s, the trial's {cpus} | images/s per CPU core | "
          "cost model, per core |")  # fmt: skip
    print("|---|---|---|---|")
    for aug, rates in pipe.items():
        median = statistics.median(rates)
        print(f"| pipeline, augment={aug} | {median:,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) "
              f"| {median / args.cpus:,.0f} | {PIPELINE_PER_CORE[aug]:,.0f} |")  # fmt: skip
    print(f"| seed's Keras 2 ImageDataGenerator, 1 thread | {seed_rate:,.0f} | - | - |")
    print(f"\nResNet-20 (batch 128, float32) on each GPU type: the cost model's training "
          f"images/s; ratio = pipeline(standard, the trial's {cpus}) / that rate (>= 1: the "
          f"GPU stays fed); cores the standard pipeline needs at {standard / args.cpus:,.0f} "
          "images/s per core:\n")  # fmt: skip
    print(f"| GPU type | predicted training images/s | ratio, {cpus} | cores needed |")
    print("|---|---|---|---|")
    demand = gpu_demand(standard, args.cpus)
    for gpu_type, rate, ratio, need in demand:
        print(f"| {gpu_type} | {rate:,.0f} | {ratio:.2f} | {need:.1f} |")
    short = [gpu_type for gpu_type, _, ratio, _ in demand if ratio < 1]
    print(
        f"\nwith the trial's {cpus}, the standard pipeline keeps "
        + (f"every GPU type fed except {', '.join(short)}." if short else "every GPU type fed.")
    )


if __name__ == "__main__":
    main()
