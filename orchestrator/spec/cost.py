"""What a trial costs in hours and gigabytes, estimated without TensorFlow (pure).

One training step of batch B on one GPU type, layer by layer (the zoo's own builder run on
its counting backend, zoo/counting.py), on a roofline of the type's published figures
(scheduling/policy/gputypes.py):

    layer time = max(FLOPs / (peak x ETA_COMPUTE), bytes / (bandwidth x ETA_MEMORY))
    step time  = sum of layer times + layers x LAYER_OVERHEAD_S + optimizer update

FLOPs: 2 per MAC forward, twice that backward (gradients for inputs and for weights).
Bytes: every activation a layer reads and writes, forward once and backward about twice
(read the gradient and the saved input, write the input gradient); a BN makes BN_PASSES
passes (statistics, then normalise; the backward reads twice). The peak is the type's
TF32 rate for float32 (TensorFlow's default on GPUs that have it), its FP16 / BF16 rate
under mixed precision; activations are 4 or 2 bytes wide.

An epoch takes max(steps x step time, the input pipeline's time for the epoch's images on
the trial's CPUs) plus the evaluation pass (forward only) over the test split. Constants:
  - ETA_COMPUTE, ETA_MEMORY: the fraction of peak FLOP/s and bandwidth that dense layers
    and streaming layers reach; round values (half of peak for cuDNN convolutions, three
    quarters of peak bandwidth as STREAM-like kernels reach), not fitted.
  - LAYER_OVERHEAD_S: framework time per layer per step (op dispatch, the layer's backward
    and optimizer ops), the only constant calibrated on the seed table, on ONE row:
    ResNet-110 on a GTX 1080 Ti (3h38 for 200 epochs), the deepest, thinnest network.
  - The pipeline's images/s per CPU core: measured on this machine
    (benchmarks/input_pipeline.py, benchmarks/RESULTS.md).
Once orch has run epochs of a model family on a GPU type, the measured/predicted ratio for
that (family, type) pair scales the estimate: `learned` below (the ledger keeps it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.data.registry import DATASETS
from orchestrator.scheduling.policy.gputypes import CPU, GpuSpec, spec
from orchestrator.spec.model import DataSpec, TrialSpec

ETA_COMPUTE = 0.5
ETA_MEMORY = 0.75
BN_PASSES = 4
# Calibrated on the seed's ResNet-110 row (see the module docstring and RESULTS.md).
LAYER_OVERHEAD_S = 185e-6
# Data parallelism over n GPUs of one node: each extra GPU adds this fraction of one.
MULTI_GPU_SCALING = 0.9
# CUDA context, cuDNN/cuBLAS handles and workspace: taken on every GPU a trial uses.
RUNTIME_OVERHEAD_GB = 0.6

# Input pipeline, images/s per CPU core: benchmarks/input_pipeline.py on this machine
# (2-core AMD EPYC, 2026-11-28, under load; RESULTS.md), tf.data spreading over the trial's
# cores. "seed-keras2" is the seed's Keras 2 ImageDataGenerator (flip + shift on the CPU
# with scipy; keras.src.legacy), one generator thread (fit_generator's default workers=1)
# whatever the CPUs: 4,650 images/s measured at a 1-min load of 2 (2,527 at a load of 25).
PIPELINE_PER_CORE: dict[str, float] = {
    "none": 33_000.0,
    "standard": 10_000.0,
    "standard_reflect": 9_200.0,
    "padcrop": 8_100.0,
}
SEED_KERAS2_IMAGES_PER_S = 4_650.0


@dataclass(frozen=True)
class ModelCounts:
    params: int  # model.count_params() of what the trial builds (its dataset's classes)
    macs: int  # per image, forward


@dataclass(frozen=True)
class Estimate:
    """A trial on one GPU type (per GPU for memory)."""

    gpu_type: str
    seconds: float  # the whole training, from scratch
    epoch_s: float
    step_s: float  # one training step on the GPU(s), input excluded
    input_s: float  # the input pipeline's time per epoch
    eval_s: float  # the evaluation pass per epoch
    memory_gb: float  # peak per GPU

    @property
    def input_bound(self) -> bool:
        return self.input_s > self.epoch_s - self.eval_s - 1e-9


def model_counts(trial: TrialSpec) -> ModelCounts | None:
    """Parameters and MACs per image of the trial's model; None if the zoo cannot size it."""
    totals = _totals(trial.model, _shape(trial), trial.model_args)
    return None if totals is None else ModelCounts(totals[0], totals[1])


@functools.lru_cache(maxsize=4096)
def _totals(model: str, shape: tuple, model_args: tuple) -> tuple[int, int, int, int, int] | None:
    """(params, MACs, trainable params, activation elements kept for the backward pass,
    the largest layer's reads + writes) per image: once per architecture, for 10,000-trial
    grids of a few models."""
    layers = _walk(model, shape, model_args)
    if layers is None:
        return None
    return (
        layers.params,
        layers.macs,
        sum(layer.trainable for layer in layers.layers),
        sum(layer.writes for layer in layers.layers if layer.kind in _SAVED),
        max((layer.reads + layer.writes for layer in layers.layers), default=0),
    )


def _shape(trial: TrialSpec) -> tuple:
    """(classes, input shape) of the trial's dataset; Nones let the model's defaults hold."""
    return _dataset_shape(trial.data.name)


@functools.lru_cache(maxsize=256)
def _dataset_shape(name: str) -> tuple:
    from orchestrator.data import DATASETS

    info = DATASETS.get(name)
    return (info.num_classes, info.input_shape) if info else (None, None)


@functools.lru_cache(maxsize=4096)
def _walk(model: str, shape: tuple, model_args: tuple):  # -> zoo.counting.Walk | None
    from orchestrator.errors import OrchestratorError
    from orchestrator.spec.model import thaw
    from orchestrator.zoo import architecture

    classes, input_shape = shape
    try:
        return architecture(model, num_classes=classes, input_shape=input_shape, **thaw(model_args))
    except (OrchestratorError, TypeError, ValueError):
        return None


def _splits(data: DataSpec) -> tuple[int | None, int]:
    """The train and test images the loader yields: the full splits (data/registry.py) or
    the train_size / test_size subsets of them; a generated set is as large as they say."""
    info = DATASETS.get(data.name)
    if info is None:
        return data.train_size, data.test_size or 0
    train, test = info.split_sizes()
    if info.train_images is None:  # generated: the sizes asked for replace the defaults
        return data.train_size or train, data.test_size or test
    train = train if data.train_size is None else min(data.train_size, train)
    return train, test if data.test_size is None else min(data.test_size, test)


def _held_out(data: DataSpec, train: int) -> int:
    """Validation images held out of `train`: a count, or a fraction of it."""
    held = data.validation_size or 0
    return round(held * train) if isinstance(held, float) and held < 1 else int(held)


def training_images(data: DataSpec) -> int | None:
    """Images per epoch: the training split (or train_size) less the validation hold-out."""
    train = _splits(data)[0]
    return None if train is None else max(train - _held_out(data, train), 0)


def evaluation_images(data: DataSpec) -> int:
    """Images evaluated per epoch: the validation hold-out, else the test split."""
    train, test = _splits(data)
    return _held_out(data, train or 0) or test


def training_macs(trial: TrialSpec) -> int | None:
    """Multiply-accumulates to train the trial from scratch (forward x 3), or None."""
    counts, images = model_counts(trial), training_images(trial.data)
    if counts is None or images is None:
        return None
    return counts.macs * images * trial.epochs * 3


def _width(precision: str) -> int:
    return 2 if precision.startswith("mixed") else 4


def _peak_tflops(gpu: GpuSpec, precision: str) -> float:
    if precision == "mixed_float16":
        return gpu.fp16
    if precision == "mixed_bfloat16":
        return gpu.bf16
    return max(gpu.fp32, gpu.tf32)


@functools.lru_cache(maxsize=4096)
def _step_parts(
    model: str, shape: tuple, model_args: tuple, gpu: GpuSpec, batch: int, precision: str
) -> tuple[float, float, float]:
    """(GPU time of a training step, GPU time of an evaluation step, framework time per
    training step), seconds, on one device."""
    layers = _walk(model, shape, model_args)
    width = _width(precision)
    flops_rate = _peak_tflops(gpu, precision) * 1e12 * ETA_COMPUTE
    byte_rate = gpu.bandwidth_gbs * 1e9 * ETA_MEMORY
    train = evaluate = 0.0
    count = 0
    for layer in layers.layers:
        if layer.kind == "flatten":
            continue
        count += 1
        passes = BN_PASSES if layer.kind == "bn" else 1
        moved = (layer.reads + layer.writes) * passes * width * batch
        flops = 2 * layer.macs * batch
        train += max(3 * flops / flops_rate, 3 * moved / byte_rate)
        evaluate += max(flops / flops_rate, moved / byte_rate)
    trainable = sum(layer.trainable for layer in layers.layers)
    # SGD with momentum: read weight, gradient, slot; write weight and slot (float32).
    train += 5 * 4 * trainable / byte_rate
    return train, evaluate, count * LAYER_OVERHEAD_S


def estimate(
    trial: TrialSpec,
    gpu_type: str,
    *,
    learned: Mapping[str, float] | None = None,
    pipeline: str = "orch",
    memory_gb: float | None = None,
) -> Estimate | None:
    """The trial's training time and peak memory on `gpu_type` ('cpu': on its CPU cores).

    pipeline: "orch" (tf.data over the trial's CPUs) or "seed-keras2" (the seed's Keras 2
    ImageDataGenerator, one thread), for comparing with the seed's published times.
    `learned`: measured/predicted ratios by "family@gpu_type" (the ledger's).
    """
    images = training_images(trial.data)
    if images is None or _totals(trial.model, _shape(trial), trial.model_args) is None:
        return None
    res, precision = trial.resources, trial.recipe.precision
    on_cpu = gpu_type == CPU or not res.gpus
    gpu = spec(CPU if on_cpu else gpu_type, memory_gb)
    devices = max(res.cpus, 1.0) if on_cpu else _devices(res.gpus)
    batch = trial.batch_size
    train_gpu, eval_gpu, framework = _step_parts(
        trial.model, _shape(trial), trial.model_args, gpu, batch, precision
    )
    # Data parallelism divides the GPU work; a fraction of a GPU shares its throughput.
    # The per-layer framework time is spent on the trial's CPU side either way.
    step_s = train_gpu / devices + framework
    ratio = (learned or {}).get(learned_key(trial, gpu_type), 1.0)
    steps = math.ceil(images / batch)
    input_s = images / _pipeline_rate(trial, pipeline)
    eval_step = eval_gpu / devices + framework / 3
    eval_s = math.ceil(evaluation_images(trial.data) / batch) * eval_step * ratio
    epoch_s = max(steps * step_s * ratio, input_s) + eval_s
    return Estimate(
        gpu_type=gpu_type,
        seconds=epoch_s * trial.epochs,
        epoch_s=epoch_s,
        step_s=step_s * ratio,
        input_s=input_s,
        eval_s=eval_s,
        memory_gb=peak_memory_gb(trial) or 0.0,
    )


def _devices(gpus: float) -> float:
    return gpus if gpus <= 1 else 1 + MULTI_GPU_SCALING * (gpus - 1)


def _pipeline_rate(trial: TrialSpec, pipeline: str) -> float:
    augment = trial.recipe.augment
    if pipeline == "seed-keras2" and augment != "none":
        return SEED_KERAS2_IMAGES_PER_S
    per_core = PIPELINE_PER_CORE.get(augment, PIPELINE_PER_CORE["standard"])
    return per_core * max(trial.resources.cpus, 1.0)


def peak_memory_gb(trial: TrialSpec) -> float | None:
    """Peak GPU memory per GPU, GB: weights, gradients and optimizer slots (float32, as
    Keras keeps variables even under mixed precision), the activations kept for the
    backward pass (_SAVED) x the per-GPU batch at the compute width, the largest layer's
    temporary gradients, and the CUDA runtime. None if the model is unknown."""
    totals = _totals(trial.model, _shape(trial), trial.model_args)
    if totals is None:
        return None
    params, _, trainable, kept, largest = totals
    width = _width(trial.recipe.precision)
    per_gpu_batch = math.ceil(trial.batch_size / max(1.0, trial.resources.gpus))
    slots = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2}.get(trial.recipe.optimizer, 2)
    state = 4 * (params + trainable * (1 + slots))
    saved = kept * width * per_gpu_batch
    temporary = 2 * largest * 4 * per_gpu_batch
    return (state + saved + temporary) / 1e9 + RUNTIME_OVERHEAD_GB


# Layers whose outputs the backward pass keeps: a conv's output is its BN's input, a ReLU's
# output its own gradient's and the next conv's input. BN, add and dropout outputs are not
# needed again (BN's backward reads its input, an add's gradient passes through).
_SAVED = frozenset({"conv", "dense", "relu", "act", "concat", "pool", "mul"})


def learned_key(trial: TrialSpec, gpu_type: str) -> str:
    """The ledger key of a measured/predicted ratio: model family @ GPU type."""
    from orchestrator.zoo.registry import PRESETS

    preset = PRESETS.get(trial.model)
    return f"{preset.family if preset else trial.model}@{gpu_type}"


def efficiency_sample(
    trial: TrialSpec, gpu_type: str, epoch_compute_s: float
) -> tuple[str, float] | None:
    """(key, measured / predicted) for one finished epoch's compute time, to learn from."""
    predicted = estimate(trial, gpu_type)
    if predicted is None or predicted.epoch_s <= 0 or epoch_compute_s <= 0:
        return None
    return learned_key(trial, gpu_type), epoch_compute_s / predicted.epoch_s


def estimate_cost(trial: TrialSpec) -> float:
    """Training cost in MAC (MACs/image x images x epochs x 3); 0.0 when the model is
    unknown, so such trials sort last in longest-first order."""
    macs = training_macs(trial)
    return float(macs) if macs is not None else 0.0
