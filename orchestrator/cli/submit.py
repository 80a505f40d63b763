"""`orch submit JOB.toml`: run every unfinished trial, then print the benchmark table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.config import Workspace, workspace
from orchestrator.spec.load import load_job
from orchestrator.spec.model import JobSpec

if TYPE_CHECKING:
    from orchestrator.ledger import Ledger


def submit(
    job_file: Path = typer.Argument(..., help="The job file (TOML).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Retrain every trial from scratch."),
    address: str = typer.Option(
        None,
        "--address",
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
    job = load_job(job_file)
    from orchestrator.scheduling.adapters.address import check, parse

    ws = workspace()
    target = parse(address or ws.ray_address, _source(address, ws))
    if target.kind == "jobs":
        check(target.text, _source(address, ws))  # before the ledger lists it as submitted
        _submit_ray_job(
            job, job_file, target.text, force=force, pip=pip, python=python, update=update
        )
        return
    run_job(job, job_file.read_text(encoding="utf-8"), force=force, address=address, update=update)


def _source(address: str | None, ws: Workspace) -> str:
    """How the user gave the address, for error messages."""
    return "--address" if address else ws.origin("ray_address")


def _submit_ray_job(
    job: JobSpec,
    job_file: Path,
    address: str,
    *,
    force: bool,
    pip: bool,
    python: str,
    update: bool = False,
) -> None:
    from orchestrator.ledger import Ledger
    from orchestrator.scheduling.adapters.rayjobs import submit_driver

    ws = workspace()
    ledger = Ledger(ws.ledger_url)  # opened first: a broken ledger is refused up front
    spec_text = job_file.read_text(encoding="utf-8")
    _check_same_spec(ledger, job, update)
    # Listed only once the head has accepted it: a submit that never reached the head
    # leaves no SUBMITTED job behind.
    sid = submit_driver(job.name, job_file, address, force=force, pip=pip, python=python)
    ledger.register_job(job, spec_text)
    if update:
        ledger.drop_trials_not_in(job)
    ledger.set_ray_job(job.name, sid, address)
    name = safe(job.name)
    console.print(
        f"job [bold]{name}[/]: {len(job.trials)} trials submitted as Ray job "
        f"[bold]{safe(sid)}[/] to {safe(address)}.\nFollow it: `orch status {name}`, "
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


def _check_same_spec(ledger: Ledger, job: JobSpec, update: bool) -> None:
    """A [job] name already in the ledger with other trials: refused unless --update."""
    from orchestrator.scheduling.submit import spec_changed

    changes = ledger.spec_changes(job)
    if changes is not None and not update:
        known = ledger.job(job.name)
        raise spec_changed(job, known.spec_path if known else "?", *changes)


def run_job(
    job: JobSpec,
    spec_text: str | None,
    *,
    force: bool = False,
    address: str | None = None,
    update: bool = False,
) -> None:
    """Run a loaded job with the live display, then print its table (submit and resume)."""
    from orchestrator.cli.table import print_table

    ws = workspace()
    from orchestrator.scheduling.adapters.address import check

    # A cluster that does not answer or refuses the token is one line, before the ledger
    # records anything (bounded time; the result is cached for the connect that follows).
    check(address or ws.ray_address, _source(address, ws))
    from orchestrator.ledger import Ledger
    from orchestrator.stores import check_tracking_uri

    check_tracking_uri(ws.tracking_uri)  # a bad or damaged store: refused before any write
    if ws.tracking_uri.startswith(("http://", "https://")):
        from orchestrator.stores import probe_server

        probe_server(ws.tracking_uri)  # a server that is down: one line, before training
    ledger = Ledger(ws.ledger_url)
    _check_same_spec(ledger, job, update)  # before the live display starts
    done = set() if force else ledger.finished_keys(job.name) & {t.key for t in job.trials}
    todo = len(job.trials) - len(done)
    console.print(
        f"job [bold]{safe(job.name)}[/]: {len(job.trials)} trials, {len(done)} already finished, "
        f"{todo} to run" + (" (--force)" if force else "")
    )
    from orchestrator.scheduling.submit import submit as run_submit

    if todo:
        from orchestrator.cli.live import LiveDisplay

        with LiveDisplay(job, skipped=done) as display:
            outcome = run_submit(
                job,
                ws,
                force=force,
                address=address,
                sinks=[display],
                spec_text=spec_text,
                update=update,
            )
        console.print()
    else:
        outcome = run_submit(
            job, ws, force=False, address=address, spec_text=spec_text, update=update
        )
    print_table(job.name, job.experiment_name)
    _publish(job)
    if not outcome.ok:
        console.print(
            f"[red]{len(outcome.unfinished)} trial(s) did not finish:[/] "
            + ", ".join(safe(n) for n in outcome.unfinished)
            + ". See `orch status "
            + safe(job.name)
            + "`."
        )
        raise typer.Exit(1)


def _publish(job: JobSpec) -> None:
    """Table (md, CSV) and report as artifacts of the job's parent run, for the MLflow UI.
    Best effort: the job has run; a failure here only costs the artifacts."""
    from orchestrator.cli.report import report
    from orchestrator.cli.table import publish_table
    from orchestrator.report.table import DEFAULT_NOISE_PP, DEFAULT_SIGMAS

    try:
        publish_table(job.name, job.experiment_name)
        report(job.name, None, None, DEFAULT_NOISE_PP, DEFAULT_SIGMAS)
    except Exception as e:  # never fail a finished job over its artifacts
        console.print(f"[yellow]note:[/] could not attach the table/report to MLflow: {e}")
