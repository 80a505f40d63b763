"""Runs one trial in a fresh process and prints its reports as JSON lines (for tests that
need a clean TensorFlow, e.g. a resume in a new process or logical CPU devices)."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    job_toml, storage = sys.argv[1], sys.argv[2]
    stop_after = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    devices = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if devices:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices
        )
    from orchestrator.spec.load import load_job
    from orchestrator.training.loop import run_trial

    trial = load_job(job_toml).trials[0]
    mirror = [f"/cpu:{i}" for i in range(devices)] if devices else None
    result = run_trial(
        trial,
        storage=storage,
        stop_after=stop_after,
        mirror_devices=mirror,
        report=lambda r: print("REPORT " + json.dumps(r.to_dict()), flush=True),
    )
    print(
        "RESULT "
        + json.dumps(
            {
                "epochs_done": result.epochs_done,
                "resumed_from": result.resumed_from,
                "diverged": result.diverged,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
