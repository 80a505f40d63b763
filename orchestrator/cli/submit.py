"""`orch submit JOB.toml`: run every unfinished trial, then print the benchmark table."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.job_output import run_job
from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.config import workspace
from orchestrator.scheduling.adapters.address import given
from orchestrator.spec.load import load_job_text


def submit(
    job_file: Path = typer.Argument(..., help="The job file (TOML).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Retrain every trial from scratch."),
    address: str = typer.Option(
        None,
        "--address",
        callback=given,
        help="Ray address: host:port drives the cluster from here; http://HEAD:8265 "
        "submits the driver as a Ray Job and returns at once. Default: an embedded local Ray.",
    ),
    pip: bool = typer.Option(
        True,
        "--pip/--no-pip",
        help="With a Ray Jobs address: install orch's requirements in the job's runtime env "
        "(--no-pip when the cluster image already has them).",
    ),
    python: str = typer.Option(
        "python",
        "--python",
        help="With a Ray Jobs address: the Python on the head that runs orch's driver.",
    ),
    update: bool = typer.Option(
        False,
        "--update",
        help="The ledger has a job of this name with other trials: make this file its spec "
        "(unfinished trials only in the old spec leave the job; results and checkpoints stay).",
    ),
) -> None:
    """Submit a job: train its unfinished trials on Ray, track them in MLflow."""
    job, spec_text = load_job_text(job_file)
    from orchestrator.scheduling.adapters.address import parse
    from orchestrator.scheduling.preflight import address_source

    ws = workspace()
    target = parse(address or ws.ray_address, address_source(address, ws))
    if target.kind != "jobs":
        run_job(job, spec_text, force=force, address=address, update=update)
        return
    from orchestrator.scheduling.remote import submit_ray_job

    sid = submit_ray_job(
        job,
        spec_text,
        job_file,
        target.text,
        ws,
        source=address_source(address, ws),
        force=force,
        pip=pip,
        python=python,
        update=update,
    )
    name = safe(job.name)
    console.print(
        f"job [bold]{name}[/]: {len(job.trials)} trials submitted as Ray job "
        f"[bold]{safe(sid)}[/] to {safe(target.text)}.\nFollow it: `orch status {name}`, "
        f"`orch logs {name} -f`; stop it: `orch cancel {name}`.",
        highlight=False,
    )
    if ws.ledger_url.startswith("sqlite"):
        console.print(
            "[yellow]note:[/] the ledger is a local SQLite file; the cluster's "
            "driver can only update it if it sees the same file. Point "
            "ORCH_LEDGER_URL and ORCH_TRACKING_URI at shared servers "
            "(PostgreSQL, an MLflow server) for a shared view."
        )
