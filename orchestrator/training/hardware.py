"""TensorFlow process setup that must happen before the first op, and what hardware ran.

Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned the trial, so every GPU TensorFlow
sees here is ours; a multi-GPU trial mirrors over all of them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hardware:
    gpu_name: str  # "CPU" when no GPU is visible
    gpu_count: int
    precision: str

    @property
    def label(self) -> str:
        return self.gpu_name if self.gpu_count <= 1 else f"{self.gpu_name} x{self.gpu_count}"


def setup_tensorflow(*, cpus: float, precision: str, seed: int) -> Hardware:
    """Configure TF for one trial process. Call before any other TensorFlow use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Without memory growth TF grabs the whole GPU at the first op, so two trials
        # packed on one GPU (fractional resources) would starve each other.
        with contextlib.suppress(RuntimeError):  # already initialised (e.g. a notebook)
            tf.config.experimental.set_memory_growth(gpu, True)
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
