"""TensorFlow process setup that must happen before the first op, and what hardware ran.

Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned the trial, so every GPU TensorFlow
sees here is ours; a multi-GPU trial mirrors over all of them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from typing import Any

# Kept back from a packed trial's share for the CUDA context and cuDNN workspace outside
# TensorFlow's allocator, MB.
CONTEXT_RESERVE_MB = 300


@dataclass(frozen=True)
class Hardware:
    gpu_name: str  # "CPU" when no GPU is visible
    gpu_count: int
    precision: str

    @property
    def label(self) -> str:
        return self.gpu_name if self.gpu_count <= 1 else f"{self.gpu_name} x{self.gpu_count}"


def packed_memory_limit_mb(fraction: float, total_mb: float) -> int | None:
    """A packed trial's hard TensorFlow memory limit: its fraction of the GPU, less the
    CUDA context it pays outside TF's allocator; None for a whole GPU (or more)."""
    if not 0 < fraction < 1 or total_mb <= 0:
        return None
    return max(64, int(total_mb * fraction) - CONTEXT_RESERVE_MB)


def gpu_total_mb(index: int = 0) -> float | None:
    """Memory of the index-th visible GPU, MB, from nvidia-smi (None when it cannot say)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    query = ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    if ids:
        query += ["-i", ids[index] if index < len(ids) else ids[0]]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True)
        return float(out.stdout.strip().splitlines()[0 if ids else index])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def configure_gpu_memory(
    tf: Any, gpus: list, fraction: float, total_mb: float | None
) -> int | None:
    """Packing (0 < fraction < 1): one logical device with a hard `memory_limit` of the
    trial's share, so a packed trial can never take another's memory (memory growth alone
    lets the first one grow into all of it). Else memory growth: TF grabs only what it
    uses. Returns the limit in MB, or None."""
    limit = packed_memory_limit_mb(fraction, total_mb or 0)
    for index, gpu in enumerate(gpus):
        with contextlib.suppress(RuntimeError):  # already initialised (e.g. a notebook)
            if limit is not None and index == 0:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)]
                )
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    return limit


def setup_tensorflow(
    *, cpus: float, precision: str, seed: int, gpu_fraction: float = 1.0
) -> Hardware:
    """Configure TF for one trial process. Call before any other TensorFlow use.

    gpu_fraction: the trial's `resources.gpus`; below 1 the trial shares its GPU and gets
    a hard memory limit of that fraction of the GPU's memory."""
    from orchestrator.quiet import import_tensorflow

    import_tensorflow()  # TF's native start-up lines stay off the terminal
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        total = gpu_total_mb() if 0 < gpu_fraction < 1 else None
        configure_gpu_memory(tf, gpus, gpu_fraction, total)
    threads = max(1, int(cpus))
    with contextlib.suppress(RuntimeError):  # TF already initialised: keep its pools
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(seed)
    name = "CPU"
    if gpus:
        details: dict[str, Any] = tf.config.experimental.get_device_details(gpus[0])
        name = str(details.get("device_name", "GPU"))
    return Hardware(gpu_name=name, gpu_count=len(gpus), precision=precision)


def distribution_strategy(hardware: Hardware, devices: list[str] | None = None) -> Any:
    """MirroredStrategy over the trial's GPUs when it has more than one, else the default.

    `devices` forces mirroring over named devices (tests use two logical CPU devices).
    """
    import tensorflow as tf

    if devices:
        return tf.distribute.MirroredStrategy(devices=devices)
    if hardware.gpu_count > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
