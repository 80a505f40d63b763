"""`orch validate JOB.toml...`: check job files without running anything."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.text import plain
from orchestrator.errors import SpecError
from orchestrator.spec.load import load_job


def validate(
    files: list[Path] = typer.Argument(..., help="Job files to check.", show_default=False),
) -> None:
    """Validate job files: every problem in every file, then exit 2 if any."""
    problems: list[str] = []
    total = 0
    for f in files:
        try:
            job = load_job(f)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        total += len(job.trials)
        groups = len(job.groups)
        seeds = f" in {groups} groups" if groups != len(job.trials) else ""
        n = len(job.cluster)
        cluster = f", {n} node type{'s' if n > 1 else ''}" if n else ""
        typer.echo(f"{plain(f)}: ok: job {job.name!r}, {len(job.trials)} trials{seeds}{cluster}")
    if len(files) > 1 and not problems:
        typer.echo(f"{len(files)} files, {total} trials")
    if problems:
        raise SpecError(problems)
