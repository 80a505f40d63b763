"""`orch submit --address http://HEAD:8265`: the job's driver runs on the cluster as a Ray
Job, and the ledger lists it with that Ray Job (for `orch status`, `logs`, `cancel`)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import Workspace
from orchestrator.spec.model import JobSpec


def submit_ray_job(
    job: JobSpec,
    spec_text: str,
    job_file: Path,
    address: str,
    ws: Workspace,
    *,
    source: str,
    force: bool = False,
    pip: bool = True,
    python: str = "python",
    update: bool = False,
) -> str:
    """Submits the driver to the Ray Jobs API at `address` (given by `source`, for error
    messages); returns the Ray Job's submission id."""
    from orchestrator.ledger import Ledger
    from orchestrator.scheduling.adapters.address import check
    from orchestrator.scheduling.adapters.rayjobs import submit_driver
    from orchestrator.scheduling.preflight import check_same_spec

    check(address, source)  # before the ledger lists it as submitted
    ledger = Ledger(ws.ledger_url)  # opened first: a broken ledger is refused up front
    check_same_spec(ledger, job, update)
    # Listed only once the head has accepted it: a submit that never reached the head
    # leaves no SUBMITTED job behind.
    sid = submit_driver(job.name, job_file, address, force=force, pip=pip, python=python)
    ledger.register_job(job, spec_text)
    if update:
        ledger.drop_trials_not_in(job)
    ledger.set_ray_job(job.name, sid, address)
    return sid
