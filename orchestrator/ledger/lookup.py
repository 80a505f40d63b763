"""Finding a job in the ledger by what a user types: its name or its job file."""

from __future__ import annotations

from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError
from orchestrator.ledger.repository import JobView, Ledger


def find_job(ledger: Ledger, job: str) -> JobView:
    """JOB may be a job name or a job file; an unknown name is one line listing the jobs
    the ledger has."""
    name = job
    if job.endswith(".toml"):
        from orchestrator.spec.load import load_job

        name = load_job(job).name
    view = ledger.job(name)
    if view is None:
        known = ", ".join(j.name for j in ledger.jobs()) or "none yet"
        raise OrchestratorError(f"no job named {name!r} in the ledger (jobs: {known}).")
    return view


def read_job(job: str) -> JobView:
    """find_job in the workspace's ledger, opened for reading: a ledger that does not exist
    yet is not created (and has no jobs)."""
    return find_job(Ledger(workspace().ledger_url, create=False), job)
