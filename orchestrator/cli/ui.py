"""`orch ui`: the MLflow UI on the workspace's tracking store (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from orchestrator.cli.render import console
from orchestrator.cli.text import safe
from orchestrator.config import Workspace, workspace


def ui(
    job: str = typer.Argument(
        None,
        help="A job name or file: print the address of its runs only (default: every job's).",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind; 0.0.0.0 to serve the whole network."
    ),
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server worker processes."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the mlflow server command instead of running it."
    ),
) -> None:
    """Serve the MLflow UI for this workspace's runs (Ctrl-C stops it).

    Prints the address of each job's runs: its trials side by side with their test
    accuracy, training time and params, in any browser (the UI's own default shows no
    metric or param column until a person picks them)."""
    ws = workspace()
    from orchestrator.tracking.ui_view import check_servable

    check_servable(ws.tracking_uri, host, port, bind=not dry_run)
    cmd = server_command(ws, host=host, port=port, workers=workers)
    if dry_run:
        import shlex

        typer.echo(shlex.join(cmd))
        return
    if ws.tracking_uri.startswith("sqlite:///"):
        Path(ws.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if "://" not in ws.artifact_root:
        Path(ws.artifact_root).mkdir(parents=True, exist_ok=True)
    console.print(
        f"MLflow UI for {_redact(ws.tracking_uri)} on http://{host}:{port} (Ctrl-C stops it)"
    )
    for name, address in _job_addresses(job, host, port):
        console.print(f"Runs of {safe(name)}: {address}", soft_wrap=True)
    sys.stdout.flush()
    # The server replaces this process: signals (Ctrl-C, a supervisor's SIGTERM) reach it
    # directly, and no orch process is left waiting on it.
    os.execv(cmd[0], cmd)


def server_command(ws: Workspace, *, host: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        ws.tracking_uri,
        "--default-artifact-root",
        ws.artifact_root,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def _redact(uri: str) -> str:
    """postgresql://user:secret@db/mlflow -> postgresql://user:***@db/mlflow"""
    scheme, sep, rest = uri.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return uri
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def _job_addresses(job: str | None, host: str, port: int) -> list[tuple[str, str]]:
    from orchestrator.report.job_table import resolve_job_name
    from orchestrator.tracking.ui_view import job_addresses

    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    return job_addresses(workspace().tracking_uri, base, resolve_job_name(job) if job else None)
