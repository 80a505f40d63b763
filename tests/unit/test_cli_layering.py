"""The CLI is argument parsing and rendering (docs/architecture.md, "Layers"): a command
calls the library and renders what it returns. Checked on the source of every module in
orchestrator/cli/, without importing them:

- no command module imports another command module; commands share only the rendering
  helpers (SHARED), so logic two commands need lives in the library, not in a command;
- no cli module imports MLflow, SQLAlchemy, Ray, TensorFlow or Keras itself;
- no cli module calls a method of the ledger or the MLflow store that writes, only the
  reads in READS (the methods are read from the classes' source, so a write method added
  to one of them is refused here by default), nor asks a trial or a Ray Job to stop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator.cli.app import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "orchestrator" / "cli"
MODULES = sorted(p for p in CLI.glob("*.py") if p.name != "__init__.py")

# Rendering helpers commands may share: safe text, tables, the live display, and what
# several commands print about a job.
SHARED = {"text", "render", "live", "job_output"}
HEAVY = {"mlflow", "sqlalchemy", "ray", "tensorflow", "keras"}
# (file, class) whose methods touch the ledger or MLflow
STATEFUL = (
    ("orchestrator/ledger/repository.py", "Ledger"),
    ("orchestrator/tracking/mlflow_store.py", "MlflowStore"),
)
READS = {
    "job",
    "jobs",
    "finished_keys",
    "attempts",
    "speeds",
    "spec_changes",
    "experiment_id",  # only with create=False: checked below
}
# Named one by one: the Ray Jobs client's writes, and the stop request to a trial
# (Control.clear is left out: the name is also a checkpoint store's, which `orch train` uses).
OTHER_WRITES = {"submit_job", "stop_job", "delete_job", "submit_driver", "request_stop"}


def methods(path: str, cls: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {
                n.name
                for n in node.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                and not n.name.startswith("_")
            }
    raise AssertionError(f"{path}: no class {cls}")


def writes() -> set[str]:
    found = set().union(*(methods(path, cls) for path, cls in STATEFUL))
    return (found - READS) | OTHER_WRITES


def cli_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module under orchestrator.cli) for every import of one, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("orchestrator.cli."):
                    out.append((node.lineno, alias.name.split(".")[2]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from .x import y
                base = node.module.split(".")[0] if node.module else None
                names = [base] if base else [a.name for a in node.names]
                out += [(node.lineno, n) for n in names]
            elif node.module == "orchestrator.cli":
                out += [(node.lineno, a.name) for a in node.names]
            elif node.module and node.module.startswith("orchestrator.cli."):
                out.append((node.lineno, node.module.split(".")[2]))
    return out


def problems(name: str, source: str, write_methods: set[str]) -> list[str]:
    """What in `source` (the module `name`) is not parsing and rendering, in line order."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for line, module in cli_imports(tree):
        if module not in SHARED:
            kind = "command" if module in COMMANDS else "non-shared"
            found.append((line, f"imports the {kind} module cli.{module}"))
    for node in ast.walk(tree):
        imported: list[str] = []
        if isinstance(node, ast.Import):
            imported = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            imported = [node.module]
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += [
                (node.lineno, f"imports {m} (an adapter's job)")
                for m in imported
                if m.split(".")[0] in HEAVY
            ]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in write_methods:
                found.append((node.lineno, f"calls .{attr}(), a write"))
            if attr == "experiment_id" and not any(
                k.arg == "create" and isinstance(k.value, ast.Constant) and k.value.value is False
                for k in node.keywords
            ):
                found.append((node.lineno, ".experiment_id() without create=False"))
    return [f"{name}:{line}: {what}" for line, what in sorted(found)]


def test_the_write_list_is_real() -> None:
    """The classes still have the methods this test names (a rename would empty it)."""
    w = writes()
    assert {"end_attempt", "set_job_state", "register_job", "set_ray_job"} <= w
    assert {"set_tags", "end_run", "log_job_results", "request_stop"} <= w
    reads = set().union(*(methods(path, cls) for path, cls in STATEFUL)) & READS
    assert reads == READS


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_cli_module_is_parsing_and_rendering(path: Path) -> None:
    found = problems(path.name, path.read_text(encoding="utf-8"), writes())
    assert not found, "\n".join(found)


def test_commands_are_all_in_cli() -> None:
    """Every registered command is a module here (so the checks above cover them all)."""
    assert {p.stem for p in MODULES} >= set(COMMANDS)
    assert not SHARED & set(COMMANDS)


def test_the_checks_catch_what_the_cli_used_to_do() -> None:
    """Lines the commands had before the library took their logic over are refused."""
    before = """
from orchestrator.cli.status import find_job
from orchestrator.cli import table
from .submit import run_job
import mlflow

def cancel(ledger, store, control, c):
    from orchestrator.tracking.mlflow_store import MlflowStore
    ledger.end_attempt("job", "key", outcome="CANCELLED")
    ledger.set_job_state("job", "CANCELLED")
    store.set_tags("run", {})
    control.request_stop("key", failure_class="CANCELLED", reason="")
    c.stop_job("raysubmit_1")
    MlflowStore("uri").experiment_id("job")
"""
    found = problems("old.py", before, writes())
    assert [f.split(": ", 1)[1] for f in found] == [
        "imports the command module cli.status",
        "imports the command module cli.table",
        "imports the command module cli.submit",
        "imports mlflow (an adapter's job)",
        "calls .end_attempt(), a write",
        "calls .set_job_state(), a write",
        "calls .set_tags(), a write",
        "calls .request_stop(), a write",
        "calls .stop_job(), a write",
        ".experiment_id() without create=False",
    ]
    reads = (
        "def f(ledger, store):\n    ledger.job('x')\n    store.experiment_id('x', create=False)\n"
    )
    assert problems("ok.py", reads, writes()) == []
