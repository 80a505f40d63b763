"""The `orch` command. Thin: parse -> call the library -> render.

Errors a user can cause (OrchestratorError) print one line and exit 2; a traceback only
with ORCH_DEBUG=1. `--help` and `validate` import neither TensorFlow nor Ray.
"""

from __future__ import annotations

import os
import sys

import typer

from orchestrator.errors import OrchestratorError

app = typer.Typer(
    name="orch",
    help="Run grids of CNN trainings on a Ray cluster, tracked in MLflow, as a benchmark table.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# One module per command under orchestrator/cli/, exposing a function of the same name.
# Imported at start-up, so these modules import no TensorFlow or Ray at module level.
COMMANDS = (
    "submit",
    "plan",
    "validate",
    "status",
    "resume",
    "cancel",
    "logs",
    "table",
    "report",
    "models",
    "train",
    "cluster",
    "ui",
)


def _register() -> None:
    import importlib

    for name in COMMANDS:
        try:
            module = importlib.import_module(f"orchestrator.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"orchestrator.cli.{name}":
                raise
            continue  # a command that is not built yet
        app.command(name)(getattr(module, name))


_register()


def main() -> None:
    import logging

    # MLflow announces its schema migrations at INFO; orch's own output is the interface.
    # MLflow sets its logger's level when imported, from this variable.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except OrchestratorError as e:
        if os.environ.get("ORCH_DEBUG") == "1":
            raise
        for line in str(e).splitlines() or ["error"]:
            typer.secho(f"error: {line}", err=True, fg=typer.colors.RED)
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo(
            "Interrupted: unfinished trials continue from their last checkpoint on "
            "the next `orch submit`.",
            err=True,
        )
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors etc. come as ClickException
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
