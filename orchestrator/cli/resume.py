"""`orch resume JOB`: continue a job from the ledger, as it was submitted."""

from __future__ import annotations

import tomllib

import typer

from orchestrator.errors import SpecError


def resume(
    job: str = typer.Argument(..., help="Job name (see `orch status`)."),
    address: str = typer.Option(None, "--address", help="Ray cluster address."),
) -> None:
    """Continue every unfinished trial of JOB from its last checkpoint; skip finished ones.

    Uses the job file's text as it was submitted (kept in the ledger), so the trials keep
    their keys even if the file has been edited since."""
    from orchestrator.cli.job_output import run_job
    from orchestrator.ledger.lookup import read_job
    from orchestrator.spec.load import load_job, parse_job

    view = read_job(job)
    if view.spec_text:
        try:
            raw = tomllib.loads(view.spec_text)
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"{view.spec_path} (as submitted): not valid TOML: {e}") from None
        spec = parse_job(raw, f"{view.spec_path} (as submitted)", default_name=view.name)
    else:
        spec = load_job(view.spec_path)
    run_job(spec, view.spec_text, address=address)
