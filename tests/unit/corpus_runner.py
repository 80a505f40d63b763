"""Runs many `orch` invocations fast: imports orch's CLI once, then forks one child per
case, which sets its argv, environment and working directory and calls the same `main()`
the `orch` console script calls. A case costs milliseconds instead of a second of Python
start-up. Used by tests/unit/corpus.py; reads the cases as JSON on stdin and writes one JSON
object of results on stdout.

Environment read at import time is not exercised this way (the parent imported orch with
its own); the corpus runs such cases through the real console script instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time

PRELOAD = (
    "orchestrator.cli.app",
    "orchestrator.spec.load",
    "orchestrator.ledger",
    "orchestrator.stores",
    "orchestrator.zoo",
    "orchestrator.tracking.runs",
    "orchestrator.report.table",
    "sqlalchemy.dialects.sqlite",
    "mlflow.tracking",
)


def _child(case: dict) -> None:
    os.setsid()  # its own process group: killed on timeout with whatever it started
    os.chdir(case["cwd"])
    os.environ.clear()
    os.environ.update(case["env"])
    out = os.open(case["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(case["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.argv = ["orch", *case["argv"]]
    code: object = 0
    try:
        from orchestrator.cli.app import main

        main()
    except SystemExit as e:
        code = e.code
    except BaseException:  # main() let something through: that is a finding
        import traceback

        traceback.print_exc()
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    rc = code if isinstance(code, int) else (0 if code is None else 1)
    os._exit(rc)


def main() -> None:
    cases = json.load(sys.stdin)
    parallel = max(1, int(os.environ.get("CORPUS_PARALLEL", "4")))
    os.environ.setdefault("COLUMNS", "200")
    import importlib

    # Imported once, shared by every child: what most commands import lazily anyway.
    for name in PRELOAD:
        # A module that fails to import here is imported (and fails) in the child instead.
        with contextlib.suppress(Exception):
            importlib.import_module(name)

    results: dict[str, dict] = {}
    running: dict[int, tuple[dict, float]] = {}
    queue = list(cases)
    while queue or running:
        while queue and len(running) < parallel:
            case = queue.pop(0)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(case)
            running[pid] = (case, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for p, (case, t0) in list(running.items()):
                if now - t0 > case["timeout"]:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p, signal.SIGKILL)
            time.sleep(0.005)
            continue
        case, t0 = running.pop(pid)
        results[case["id"]] = {
            "rc": os.waitstatus_to_exitcode(status),
            "elapsed": time.monotonic() - t0,
        }
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
