"""The error corpus: bad input and broken environments, each run as a user would.

Every case runs `orch` with its own working directory and workspace and is held to the rule
of issue 15: exit 2, one line naming what is wrong and the fix (or click's usage line and
one `Error:` line), no traceback, bounded time, and nothing created that should not be.

Most cases go through `corpus_runner.py` (orch imported once, one fork per case: fast); the
ones marked `real` run the installed `orch` console script in a subprocess, as issued.
All cases of a file run once, in parallel, and each parametrized test checks its own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ORCH, ROOT

RUNNER = Path(__file__).with_name("corpus_runner.py")
CLEAN_ENV = ("ORCH_LEDGER_URL", "ORCH_TRACKING_URI", "ORCH_STORAGE", "ORCH_RAY_ADDRESS")
# Issue 15: anything that waits on an address ends within 20 s. A case's own budget adds the
# start-up of Python on a loaded 2-core CI machine (seconds, not the network wait).
BOUND_S = 20.0
STARTUP_S = 40.0
ESC = "\x1b"
SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Case:
    id: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)  # "{dir}" expands to the case folder
    setup: Callable[[Path], None] | None = None  # builds files in the case folder
    kind: str = "error"  # error: `error: ...` lines; usage: click's usage error; ok: exit 0
    match: str | None = None  # a regex the error line must match (case-insensitive)
    creates: Iterable[str] = ()  # paths (relative to the case folder) it may create
    real: bool = False  # through the `orch` console script in a subprocess
    timeout: float = BOUND_S + STARTUP_S
    check: Callable[[Path, Result], None] | None = None  # more checks on the outcome

    def __str__(self) -> str:
        return self.id


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    elapsed: float
    created: set[str]
    folder: Path


def _tree(root: Path) -> dict[str, tuple[float, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            try:
                st = p.lstat()
            except OSError:
                continue
            out[str(p.relative_to(root))] = (st.st_mtime, st.st_size)
    return out


def _env(case: Case, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and not k.startswith("ORCH_")}
    env.update(
        {
            "ORCH_HOME": str(folder / ".orch"),
            "ORCH_DASHBOARD": "0",
            "ORCH_OFFLINE": "1",
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update({k: v.replace("{dir}", str(folder)) for k, v in case.env.items()})
    return {k: v for k, v in env.items() if v != "<unset>"}


def run_corpus(cases: Sequence[Case], root: Path) -> dict[str, Result]:
    """Runs every case in its own folder under `root`; returns their results by id."""
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    folders, before = {}, {}
    for i, case in enumerate(cases):
        folder = root / f"c{i:03d}"
        folder.mkdir(parents=True)
        if case.setup:
            case.setup(folder)
        folders[case.id] = folder
        before[case.id] = _tree(folder)
    forked = [c for c in cases if not c.real]
    real = [c for c in cases if c.real]
    raw: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c.id: pool.submit(_run_real, c, folders[c.id]) for c in real}
        raw.update(_run_forked(forked, folders, root))
        raw.update({k: f.result() for k, f in futures.items()})
    results = {}
    for case in cases:
        folder = folders[case.id]
        after = _tree(folder)
        created = {
            p
            for p in after
            if p not in before[case.id]
            and not p.startswith(".case")
            # SQLite's sidecar files of a database that was already there
            and not (p.endswith(SIDECARS) and p.rsplit("-", 1)[0] in before[case.id])
        }
        r = raw[case.id]
        results[case.id] = Result(
            r["rc"],
            (folder / ".case.out").read_text(errors="replace"),
            (folder / ".case.err").read_text(errors="replace"),
            r["elapsed"],
            created,
            folder,
        )
    return results


def _run_real(case: Case, folder: Path) -> dict:
    t0 = time.monotonic()
    with open(folder / ".case.out", "w") as out, open(folder / ".case.err", "w") as err:
        try:
            # Its own process group: a case that hangs is killed with whatever it started.
            p = subprocess.Popen(
                [ORCH, *case.argv],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=_env(case, folder),
                cwd=folder,
                start_new_session=True,
            )
            rc = p.wait(timeout=case.timeout + 10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
    return {"rc": rc, "elapsed": time.monotonic() - t0}


def _run_forked(cases: Sequence[Case], folders: dict[str, Path], root: Path) -> dict[str, dict]:
    if not cases:
        return {}
    specs = [
        {
            "id": c.id,
            "argv": list(c.argv),
            "env": _env(c, folders[c.id]),
            "cwd": str(folders[c.id]),
            "stdout": str(folders[c.id] / ".case.out"),
            "stderr": str(folders[c.id] / ".case.err"),
            "timeout": c.timeout + 10,
        }
        for c in cases
    ]
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    for k in list(env):
        if k.startswith("ORCH_"):
            del env[k]
    p = subprocess.run(
        [sys.executable, str(RUNNER)],
        input=json.dumps(specs),
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def check(case: Case, r: Result) -> None:
    """The rule of issue 15 for one case."""
    where = f"{case.id}: orch {' '.join(case.argv)}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr + r.stdout, where
    assert r.elapsed < case.timeout, f"took {r.elapsed:.1f} s; {where}"
    assert ESC not in r.stderr + r.stdout, f"raw escape sequence printed; {where}"
    if case.kind == "ok":
        assert r.rc == 0, where
    elif case.kind == "usage":
        assert r.rc == 2, where
        errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, where
        if case.argv:  # click's usage line, then the problem
            assert re.search(r"^Usage: orch", r.stderr, re.M), where
        if case.match:
            assert re.search(case.match, errors[0], re.I), where
    else:
        assert r.rc == 2, where
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, f"want one error line; {where}"
        assert len(errors[0]) > 30, where  # says what is wrong and what to do
        assert "unexpected" not in errors[0], f"an unforeseen exception; {where}"
        if case.match:
            assert re.search(case.match, errors[0], re.I), where
    allowed = set(case.creates)
    extra = {p for p in r.created if not any(p == a or p.startswith(a + "/") for a in allowed)}
    assert not extra, f"created {sorted(extra)}; {where}"
    if case.check:
        case.check(r.folder, r)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


TINY_JOB = """
[job]
name = "{name}"
[[trial]]
name = "{trial}"
model = "lenet5"
dataset = "digits"
epochs = 1
"""


def job_file(folder: Path, name: str = "tiny", trial: str = "a", file: str = "job.toml") -> Path:
    return write(folder / file, TINY_JOB.format(name=name, trial=trial))
