"""Submitting orch's driver to a remote cluster as a Ray Job (Ray Jobs API).

`orch submit JOB.toml --address http://HEAD:8265` uploads the working directory (orch's
code and the job file) with orch's requirements as the job's runtime environment and runs
`orch submit` on the cluster, where it connects with address "auto". The local command
returns at once with the submission id; `orch status`, `orch logs` and `orch cancel`
follow it. The ledger and MLflow must be shared (PostgreSQL, a tracking server) for the
local `orch status` to see what the remote driver writes: their URLs are forwarded.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.protocol import Tag

FORWARDED_ENV = (
    "ORCH_LEDGER_URL",
    "ORCH_TRACKING_URI",
    "ORCH_STORAGE",
    "ORCH_DATA_DIR",
    "ORCH_INFEASIBLE_GRACE_S",
    "ORCH_LEASE_TTL_S",
    "MLFLOW_TRACKING_TOKEN",
)
# A head just started brings its job agent up within seconds; the Jobs API says "No
# available agent" until then, and for good when the agent could not start.
AGENT_WAIT_S = 30.0
NO_AGENT = "No available agent"
EXCLUDES = [
    ".orch",
    ".venv",
    ".git",
    "**/__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
]


def is_jobs_address(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))  # type: ignore[union-attr]


def requirements() -> list[str]:
    """orch's own runtime requirements (no extras), for the job's pip environment."""
    reqs = metadata.requires("orch") or []
    return [r.split(";")[0].strip() for r in reqs if "extra ==" not in r]


def runtime_env(workdir: Path, *, pip: bool) -> dict[str, Any]:
    env_vars = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    env: dict[str, Any] = {
        "working_dir": str(workdir),
        "excludes": EXCLUDES,
        "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", **env_vars},
    }
    if pip:
        env["pip"] = requirements()
    return env


def submission_id(job: str) -> str:
    return f"orch-{re.sub(r'[^A-Za-z0-9_-]+', '-', job)}-{time.strftime('%Y%m%d-%H%M%S')}"


def submit_driver(
    job_name: str, job_file: Path, address: str, *, force: bool, pip: bool, python: str = "python"
) -> str:
    """Start `orch submit` on the cluster as a Ray Job; returns its submission id."""
    workdir = Path.cwd()
    try:
        rel = job_file.resolve().relative_to(workdir.resolve())
    except ValueError:
        raise OrchestratorError(
            f"{job_file}: must lie inside the working directory {workdir}, which is what "
            "is uploaded to the cluster. Run orch from the folder that holds it."
        ) from None
    # "auto" on the cluster means the RAY_ADDRESS the Jobs API sets for the entrypoint.
    entry = (
        f"{shlex.quote(python)} -m orchestrator.cli.app submit {shlex.quote(str(rel))} "
        "--address auto"
    )
    if force:
        entry += " --force"
    jobs = client(address)
    sid, env = submission_id(job_name), runtime_env(workdir, pip=pip)
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return str(
                jobs.submit_job(
                    entrypoint=entry, submission_id=sid, runtime_env=env,
                    metadata={Tag.JOB: job_name},
                )
            )  # fmt: skip
        except RuntimeError as e:  # the Jobs SDK's answer to any HTTP error
            said = " ".join(str(e).split())
            if NO_AGENT in said and time.monotonic() < deadline:
                time.sleep(1)
                continue
            raise OrchestratorError(refusal(address, said)) from None


def refusal(address: str, said: str) -> str:
    """The one line for a Jobs API that answered but would not take the job."""
    if NO_AGENT in said:
        return (
            f"--address {address}: the head's Ray Jobs API has no job agent (still none after "
            f"{AGENT_WAIT_S:g} s): its dashboard agent did not start. Check the head's "
            "dashboard_agent.log (in its session's logs); with two Ray heads on one machine, "
            "give each its own --dashboard-agent-listen-port."
        )
    return f"--address {address}: the Ray Jobs API refused the job ({said})."


def client(address: str, source: str = "--address") -> Any:
    """A Jobs API client for `address`, checked first (address.check: it answers within
    seconds and accepts this machine's token; Ray's client itself waits forever on a port
    that accepts but never answers) and sending the token when there is one."""
    from orchestrator.scheduling.adapters.address import check

    check(address, source)
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as e:
        raise OrchestratorError(
            f"{source} {address}: cannot reach the Ray Jobs API: {e}. "
            "Is the head's dashboard running on that port?"
        ) from None
