"""The `orch` command. Thin: parse -> call the library -> render.

Errors a user can cause (OrchestratorError) print one line and exit 2; a traceback only
with ORCH_DEBUG=1. `--help` and `validate` import neither TensorFlow nor Ray.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer

from orchestrator.errors import OrchestratorError


def _typer_click() -> Any:
    """The click that typer runs on: typer >= 0.29 vendors it as typer._click; older
    typers use the click package. (Imported by name: the two are different classes.)"""
    try:
        return importlib.import_module("typer._click")
    except ImportError:  # pragma: no cover
        return importlib.import_module("click")


def _click_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [_typer_click().ClickException]
    try:
        from click import ClickException

        errors.append(ClickException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


_CLICK_ERRORS = _click_errors()

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
        _print_error("\n".join(e.lines()))  # one line, or one per problem it lists
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
    except _CLICK_ERRORS as e:
        # A usage error (unknown command or option, missing argument, bad value): click's
        # usage line, a hint and the problem, exit 2. Typer 0.29 raises these from its own
        # copy of click, so the plain `click` package's classes never match.
        if os.environ.get("ORCH_DEBUG") == "1":
            raise
        sys.exit(_show_usage_error(e))
    except OSError as e:
        # The environment refused something orch did not foresee (a read-only folder, a
        # full disk, a file where a folder should be): the path and the reason, exit 2.
        if os.environ.get("ORCH_DEBUG") == "1":
            raise
        if e.filename:
            _print_error(f"{e.filename}: {e.strerror or e}. Check that path and its permissions.")
        else:  # e.g. stdout on a full disk
            _print_error(f"{e.strerror or e} (ORCH_DEBUG=1 shows where).")
        sys.exit(2)
    except Exception as e:
        # Not a mistake of the user's: a bug. Still one line; the traceback on request.
        if os.environ.get("ORCH_DEBUG") == "1":
            raise
        _print_error(
            f"unexpected {type(e).__name__}: {e}. This is a bug in orch: run again with "
            "ORCH_DEBUG=1 for the traceback and report it."
        )
        sys.exit(1)


def _show_usage_error(e: Any) -> int:
    """Prints a click usage error (`e`, one of _CLICK_ERRORS) as click would; returns the
    exit code."""
    if type(e).__name__ == "NoArgsIsHelpError":
        # `orch` alone: the help went to stdout as it was built; say what is missing.
        typer.echo("Error: Missing command. Run 'orch COMMAND'; see 'orch --help'.", err=True)
    else:
        if getattr(e, "ctx", "absent") is None:  # raised by click's parser without one
            e.ctx = _usage_context(sys.argv[1:])
        e.show()
    return e.exit_code if isinstance(e.exit_code, int) and e.exit_code else 2


def _usage_context(argv: list[str]) -> object | None:
    """A click context for the command named in `argv` (or orch itself), so that a usage
    error raised without one still shows the usage line and the --help hint."""
    Context = _typer_click().Context
    group = typer.main.get_command(app)
    root = Context(group, info_name="orch")
    name = next((a for a in argv if not a.startswith("-")), None)
    sub = getattr(group, "commands", {}).get(name)
    return Context(sub, info_name=name, parent=root) if sub is not None else root


def _print_error(message: str) -> None:
    """Each line as `error: ...` on stderr, with control characters made visible: messages
    quote names from shared job files and ledgers."""
    from orchestrator.cli.text import plain

    for line in message.splitlines() or ["error"]:
        typer.secho(f"error: {plain(line)}", err=True, fg=typer.colors.RED)


if __name__ == "__main__":
    main()
