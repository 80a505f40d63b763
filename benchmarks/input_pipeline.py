"""Is the input pipeline fast enough to never starve the model?

Measures, on this machine's CPU:
  1. images/s the training pipeline delivers (batch 128, 32x32x3, CIFAR-sized 50,000-image
     array, one full epoch per repeat, per augmentation; "standard" is the target);
  2. images/s a ResNet-20 training step consumes (SGD, batch 128, one in-memory batch
     repeated, so no input cost is included);
and prints both with their ratio. Target: ratio >= 10, so that on a GPU roughly 10x faster
than this CPU the pipeline still keeps up. Both run on the same cores, one after the other:
the ratio is an upper bound on the headroom while they share the CPU during training.

It also states the pipeline's images/s per CPU core (tf.data spreads over all of them), the
seed's own Keras 2 ImageDataGenerator (flip + shift on the CPU with scipy, one thread as
fit_generator's default workers=1) for the cost model's comparison with the seed's times,
and, per GPU type of the cost model, the ResNet-20 training images/s it predicts and the
cores needed to keep that GPU fed (ratio taken against the GPU rate, not a CPU step).

    .venv/bin/python benchmarks/input_pipeline.py [--data synthetic|digits] [--repeats 3]

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


def cifar_sized(data: str) -> Split:
    """A 50,000-image uint8 training split: generated, or digits tiled to CIFAR size."""
    if data == "synthetic":
        return load_dataset("synthetic", train_size=CIFAR_TRAIN, test_size=100).train
    digits = load_dataset("digits").train
    reps = -(-CIFAR_TRAIN // len(digits))
    x = np.concatenate([digits.x] * reps)[:CIFAR_TRAIN]
    y = np.concatenate([digits.y] * reps)[:CIFAR_TRAIN]
    return Split(x, y, digits.stats)


def pipeline_rate(split: Split, augment: str, repeats: int) -> list[float]:
    """images/s of full epochs (epoch 0 is a warm-up: it traces the graph)."""
    from orchestrator.data import make_train_pipeline

    rates = []
    for epoch in range(repeats + 1):
        pipeline = make_train_pipeline(
            split, batch_size=BATCH, epoch=epoch, seed=0, preprocess="meanstd",
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


def gpu_demand(per_core: float) -> list[tuple[str, float, float]]:
    """(GPU type, ResNet-20 training images/s the cost model predicts, cores to feed it)."""
    from orchestrator.scheduling.policy.gputypes import SPECS
    from orchestrator.spec.load import parse_job

    job = parse_job(
        {"trial": [{"name": "r20", "model": "resnet20", "dataset": "cifar10", "epochs": 1,
                    "batch_size": BATCH, "resources": {"gpus": 1, "cpus": 64}}]},
        "resnet20.toml",
    )  # fmt: skip
    from orchestrator.spec.cost import estimate

    trial = job.trials[0]
    out = []
    for gpu_type in SPECS:
        e = estimate(trial, gpu_type)
        rate = BATCH / e.step_s
        out.append((gpu_type, rate, rate / per_core))
    return out


def build_model():
    """ResNet-20 from the zoo; a tiny inline stand-in only if the zoo is unavailable."""
    import keras

    try:
        from orchestrator.zoo import create_model

        return create_model("resnet20", num_classes=10, input_shape=(32, 32, 3)), "zoo resnet20"
    except ImportError:
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
        for width, stride in ((16, 1), (16, 1), (16, 1), (32, 2), (32, 1), (32, 1),
                              (64, 2), (64, 1), (64, 1)):  # fmt: skip
            y = keras.layers.Conv2D(width, 3, stride, padding="same", activation="relu")(x)
            y = keras.layers.Conv2D(width, 3, padding="same")(y)
            x = keras.layers.Conv2D(width, 1, stride)(x) if stride > 1 else x
            x = keras.layers.Activation("relu")(keras.layers.Add()([x, y]))
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(10, activation="softmax")(x)
        return keras.Model(inputs, outputs), "inline ResNet-20 stand-in"


def model_rate(steps: int, repeats: int) -> tuple[list[float], str]:
    """images/s of ResNet-20 training steps on one fixed batch (no input cost)."""
    import keras
    import tensorflow as tf

    model, label = build_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, BATCH)
    batch = tf.data.Dataset.from_tensors((x, y)).cache()
    model.fit(batch.repeat(3), epochs=1, verbose=0)  # warm-up: trace and compile
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(batch.repeat(steps), epochs=1, verbose=0)
        rates.append(steps * BATCH / (time.perf_counter() - start))
    return rates, label


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("synthetic", "digits"), default="synthetic")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="training steps per repeat")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    split = cifar_sized(args.data)
    pipe = {aug: pipeline_rate(split, aug, args.repeats) for aug in AUGMENTATIONS}
    step, label = model_rate(args.steps, args.repeats)
    model_ips = statistics.median(step)
    ratio = statistics.median(pipe["standard"]) / model_ips
    seed_rate = seed_generator_rate(split)
    cores = os.cpu_count() or 1

    # Other processes on the machine slow both sides; the load average says how much.
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(f"### {dt.date.today().isoformat()}: {machine()}")
    print(f"data: {args.data}, {len(split):,} images 32x32x3, batch {BATCH}, "
          f"preprocess meanstd; median of {args.repeats} (min-max); {load}\n")  # fmt: skip
    print("| measurement | images/s |")
    print("|---|---|")
    for aug, rates in pipe.items():
        print(f"| pipeline, augment={aug} | {statistics.median(rates):,.0f} "
              f"({min(rates):,.0f}-{max(rates):,.0f}) |")  # fmt: skip
    print(f"| {label} training step | {model_ips:,.0f} ({min(step):,.0f}-{max(step):,.0f}) |")
    print(f"| seed's Keras 2 ImageDataGenerator, 1 thread | {seed_rate:,.0f} |")
    verdict = "meets" if ratio >= 10 else "MISSES"
    print(f"\nratio pipeline(standard) / model step = {ratio:.1f} ({verdict} the target >= 10)")
    print(f"\nper CPU core ({cores} cores, tf.data over all of them):\n")
    print("| augment | images/s per core |")
    print("|---|---|")
    for aug, rates in pipe.items():
        print(f"| {aug} | {statistics.median(rates) / cores:,.0f} |")
    per_core = statistics.median(pipe["standard"]) / cores
    print("\nResNet-20 (batch 128, float32) on each GPU type, cost model; cores of this CPU "
          "the standard pipeline needs to keep up:\n")  # fmt: skip
    print("| GPU type | predicted training images/s | cores needed |")
    print("|---|---|---|")
    for gpu_type, rate, need in gpu_demand(per_core):
        print(f"| {gpu_type} | {rate:,.0f} | {need:.1f} |")


if __name__ == "__main__":
    main()
