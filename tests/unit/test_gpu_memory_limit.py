"""A packed trial (gpus < 1) gets a hard TensorFlow memory limit of its share of the GPU
(training/hardware.py); a whole-GPU trial gets memory growth. No GPU here: TensorFlow's
config calls are recorded by a stand-in for `tf`, the one thing this machine cannot run."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.training.hardware import (
    CONTEXT_RESERVE_MB,
    configure_gpu_memory,
    packed_memory_limit_mb,
)


def test_limit_is_the_fraction_less_the_context() -> None:
    assert packed_memory_limit_mb(0.25, 16_000) == 4_000 - CONTEXT_RESERVE_MB
    assert packed_memory_limit_mb(0.5, 11_264) == 5_632 - CONTEXT_RESERVE_MB
    assert packed_memory_limit_mb(1.0, 16_000) is None
    assert packed_memory_limit_mb(2.0, 16_000) is None
    assert packed_memory_limit_mb(0.25, 0) is None  # unknown size: fall back to growth


class RecordingTF:
    """The slice of `tf.config` that configure_gpu_memory uses."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        experimental = SimpleNamespace(
            set_memory_growth=lambda gpu, on: self.calls.append(("growth", gpu, on))
        )
        self.config = SimpleNamespace(
            experimental=experimental,
            set_logical_device_configuration=lambda gpu, devices: self.calls.append(
                ("logical", gpu, [d.memory_limit for d in devices])
            ),
            LogicalDeviceConfiguration=lambda memory_limit: SimpleNamespace(
                memory_limit=memory_limit
            ),
        )


def test_packed_trial_gets_one_logical_device_with_a_hard_limit() -> None:
    tf = RecordingTF()
    limit = configure_gpu_memory(tf, ["GPU:0"], 0.25, 16_160)
    assert limit == 4_040 - CONTEXT_RESERVE_MB
    assert tf.calls == [("logical", "GPU:0", [limit])]


def test_whole_gpu_trials_grow_instead() -> None:
    tf = RecordingTF()
    assert configure_gpu_memory(tf, ["GPU:0", "GPU:1"], 2.0, None) is None
    assert tf.calls == [("growth", "GPU:0", True), ("growth", "GPU:1", True)]
    tf = RecordingTF()
    assert configure_gpu_memory(tf, ["GPU:0"], 0.5, None) is None  # size unknown
    assert tf.calls == [("growth", "GPU:0", True)]


def test_real_tensorflow_accepts_the_setup_on_cpu() -> None:
    """On this CPU-only machine the real setup runs end to end (no GPU to limit)."""
    import subprocess
    import sys

    code = (
        "from orchestrator.training.hardware import setup_tensorflow\n"
        "hw = setup_tensorflow(cpus=1, precision='float32', seed=0, gpu_fraction=0.25)\n"
        "print(hw.gpu_name, hw.gpu_count)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["CPU", "0"]
