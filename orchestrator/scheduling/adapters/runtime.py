"""Connecting to Ray: an embedded local cluster by default, or an existing one."""

from __future__ import annotations

import logging
import os
from typing import Any

# Quiet TensorFlow and Ray's own noise in every trial process; the live display and
# MLflow are the interface, the full logs stay in Ray's session directory.
WORKER_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
}


def connect(
    address: str = "local",
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    resources: dict[str, float] | None = None,
    source: str = "--address",
) -> Any:
    """ray.init for orch. "local" always starts a private cluster: with no address Ray
    would attach to any cluster left running on the machine. Any other address
    is checked first (address.check: bounded time, the token, one-line errors naming
    `source`). Returns Ray's context; its `dashboard_url` is where people watch the trials."""
    from orchestrator.scheduling.adapters.address import AddressError, check

    addr = check(address, source)
    if addr.kind == "jobs":
        raise AddressError(
            f"{source} {address}: a Ray Jobs address; only `orch submit` takes one (it runs "
            "the driver on the cluster). Give the head's GCS address HOST:6379 here."
        )
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    for k, v in WORKER_ENV.items():
        os.environ.setdefault(k, v)
    # As a Ray Job's driver, the job already has a runtime env (working dir, pip, orch's
    # env vars): merge ours into it instead of refusing to start.
    os.environ.setdefault("RAY_OVERRIDE_JOB_RUNTIME_ENV", "1")
    kwargs: dict[str, Any] = dict(
        logging_level=logging.WARNING,
        log_to_driver=os.environ.get("ORCH_TRIAL_LOGS") == "1",
        runtime_env={"env_vars": dict(WORKER_ENV)},
    )
    if address == "local":
        kwargs.update(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            resources=resources,
            include_dashboard=os.environ.get("ORCH_DASHBOARD", "1") != "0",
        )
    from orchestrator.quiet import quiet_ray

    quiet_ray()  # no "Token authentication is enabled" notice on every local run
    return ray.init(address=addr.hostport if addr.kind == "gcs" else address, **kwargs)


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
