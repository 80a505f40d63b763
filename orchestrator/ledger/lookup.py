"""Finding a job in the ledger by what a user types (its name or its job file), and its
spec as it was submitted."""

from __future__ import annotations

import tomllib

from orchestrator.config import workspace
from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.ledger.repository import JobView, Ledger
from orchestrator.spec.model import JobSpec


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


def job_as_submitted(view: JobView) -> JobSpec:
    """The job's spec from its file's text as submitted (kept in the ledger), so its trials
    keep their keys even if the file has been edited since; the file itself for jobs
    registered before the ledger kept the text."""
    from orchestrator.spec.load import load_job, parse_job

    if not view.spec_text:
        return load_job(view.spec_path)
    try:
        raw = tomllib.loads(view.spec_text.removeprefix("\ufeff"))  # a BOM, as load_job
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{view.spec_path} (as submitted): not valid TOML: {e}") from None
    return parse_job(raw, f"{view.spec_path} (as submitted)", default_name=view.name)
