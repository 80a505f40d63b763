"""Error corpus, class 4: hostile content (issue 15 §7).

Names with terminal escape sequences or rich markup, from job files, the command line, a
shared ledger and a shared tracking store, must print as visible text (never raw control
codes, never a MarkupError); archive bombs are refused from their declared sizes, before
anything is read into memory.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from functools import cache
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.cli.text import plain, safe
from orchestrator.data import load_dataset
from orchestrator.errors import DatasetError
from tests.conftest import ROOT
from tests.unit.corpus import ESC, Case, Result, check, run_corpus, write

JOB = "j[/]x[bold]"  # rich markup in the job name: a MarkupError when printed raw
HOSTILE_JOB = f"""
[job]
name = "{JOB}"
[[trial]]
name = "t[/]a"
model = "lenet5"
dataset = "digits"
epochs = 1
[[trial]]
name = "[red]b\\\\"
model = "lenet5"
dataset = "digits"
epochs = 2
"""
# What a shared ledger or tracking store can hold that no job file may: escape sequences
# (retitle the terminal, clear the screen), a one-byte CSI, a bidi override.
NASTY = "\x1b]0;PWNED\x07\x1b[2J\x9b31m\u202e"


@cache
def templates() -> Path:
    """A ledger and an MLflow store whose names and messages carry control codes and
    markup, built once (in a subprocess, as another user's orch would have written them)."""
    root = Path(tempfile.mkdtemp(prefix="corpus-hostile-"))
    write(root / "job.toml", HOSTILE_JOB)
    code = f"""
from orchestrator.ledger import Ledger
from orchestrator.spec.load import load_job
from orchestrator.tracking.mlflow_store import TAG_STATE, MlflowStore
nasty = {NASTY!r}
job = load_job({str(root / "job.toml")!r})
ledger = Ledger("sqlite:///{root}/orch.db")
ledger.register_job(job)
a, b = job.trials
ledger.start_attempt(job.name, a.key, node="node" + nasty, start_epoch=0)
ledger.end_attempt(job.name, a.key, outcome="FAILED", message="boom [/] " + nasty)
ledger.update_trial(job.name, a.key, gpu="[/]" + nasty, name=a.name + nasty)
ledger.set_job_state(job.name, "FAILED")
store = MlflowStore("sqlite:///{root}/mlflow.db")
exp = store.experiment_id(job.experiment_name)
parent = store.job_run(exp, job.name)
for pos, t in enumerate(job.trials):
    rid = store.trial_run(exp, parent, job.name, t, pos)
    store.log_epoch(rid, 0, {{"loss": 1.0, "val_accuracy": 0.5, "epochs_done": 1,
                             "train_time_s": 3.0, "images_per_s": 100.0}})
    store.log_final(rid, 0, {{"test_accuracy": 0.5, "params": 1000}})
    store.set_tags(rid, {{TAG_STATE: "FINISHED", "orch.error": "bad " + nasty,
                         "orch.gpu": "GPU" + nasty}})
    store.client.update_run(rid, name=t.name + nasty)
    store.end_run(rid, "FINISHED")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    # cwd: MLflow puts a SQLite store's artifacts under ./mlruns of the creating process
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root, timeout=300)
    return root


def hostile_workspace(folder: Path) -> None:
    shutil.copy(templates() / "job.toml", folder / "job.toml")
    (folder / ".orch").mkdir()
    for db in ("orch.db", "mlflow.db"):
        shutil.copy(templates() / db, folder / ".orch" / db)


def job_file_only(folder: Path) -> None:
    write(folder / "job.toml", HOSTILE_JOB)


def escaped(*fragments: str) -> object:
    """The output shows these fragments as text (visible escapes, literal brackets)."""

    def check_(folder: Path, r: Result) -> None:
        for f in fragments:
            assert f in r.stdout + r.stderr, (f, r.stdout, r.stderr)

    return check_


WS = (".orch",)  # cancel and report write to the workspace
CASES: list[Case] = [
    # names from a shared ledger
    Case(
        "status-all",
        ["status"],
        setup=hostile_workspace,
        kind="ok",
        real=True,
        check=escaped(JOB, "t[/]a\\x1b]0;PWNED\\x07", "boom [/]", "\\u202e"),
    ),
    Case(
        "status-job",
        ["status", JOB],
        setup=hostile_workspace,
        kind="ok",
        check=escaped(JOB, "\\x9b31m"),
    ),
    Case(
        "logs-job",
        ["logs", JOB],
        setup=hostile_workspace,
        kind="ok",
        check=escaped("boom [/] \\x1b]0;PWNED"),
    ),
    Case(
        "cancel-job",
        ["cancel", JOB],
        setup=hostile_workspace,
        kind="ok",
        creates=WS,
        check=escaped(JOB),
    ),
    # names from a shared tracking store
    Case(
        "table-rich",
        ["table", JOB],
        setup=hostile_workspace,
        kind="ok",
        real=True,
        check=escaped("t[/]a", "[red]b\\", "GPU\\x1b]0;PWNED\\x07"),
    ),
    *[
        Case(
            f"table-{fmt}",
            ["table", JOB, "--format", fmt],
            setup=hostile_workspace,
            kind="ok",
            check=escaped("PWNED"),
        )
        for fmt in ("md", "csv", "json", "html", "latex")
    ],
    Case("report", ["report", JOB], setup=hostile_workspace, kind="ok", creates=WS),
    Case(
        "report-out-with-markup",
        ["report", JOB, "--out", "out[/]x"],
        setup=hostile_workspace,
        kind="ok",
        creates=("out[", "out[/]x"),
    ),
    # names from a job file (markup only: the spec refuses control characters)
    Case(
        "validate-markup-names",
        ["validate", "job.toml"],
        setup=job_file_only,
        kind="ok",
        check=escaped(JOB),
    ),
    Case(
        "plan-markup-names",
        ["plan", "job.toml"],
        setup=job_file_only,
        kind="ok",
        check=escaped("t[/]a", "[red]b\\"),
    ),
    Case(
        "submit-markup-names-dead-head",
        ["submit", "job.toml", "--address", "http://127.0.0.1:1"],
        setup=job_file_only,
        creates=WS,
    ),
    *[
        Case(
            f"job-file-{where}-escape-{cmd}",
            [cmd, "job.toml"],
            match="control character",
            setup=lambda d, where=where: write(
                d / "job.toml",
                HOSTILE_JOB.replace(JOB if where == "job" else "t[/]a", "x\\u001b]0;T\\u0007"),
            ),
        )
        for where in ("job", "trial")
        for cmd in ("validate", "plan", "submit")
    ],
    # hostile arguments on the command line
    *[
        Case(f"argv-{name}", argv, match=m)
        for name, argv, m in (
            ("status-escape", ["status", "x\x1b]0;T\x07"], "no job named"),
            ("status-markup", ["status", "x[/]"], "no job named"),
            ("table-markup", ["table", "[bold]x[/]"], "no trial runs"),
            ("report-escape", ["report", "x\x1b[2J"], "no trial runs"),
            ("cancel-markup", ["cancel", "[red]x"], "no job named"),
            ("logs-escape", ["logs", "\x9b31mx"], "no job named"),
            ("models-markup", ["models", "x[/]\x1b"], "no preset"),
            ("plan-escape-file", ["plan", "\x1b[2J.toml"], "toml"),
            ("validate-markup-file", ["validate", "[/]x.toml"], "toml"),
            ("train-escape-model", ["train", "x\x1b[/]"], "unknown model"),
            (
                "train-set-escape-value",
                ["train", "lenet5", "--set", "recipe.optimizer=\x1b"],
                "optimizer",
            ),
            ("train-set-escape-key", ["train", "lenet5", "--set", "\x1b[2J=1"], "orch train"),
            ("submit-escape-file", ["submit", "\x1b]0;T\x07.toml"], "toml"),
            ("status-bidi", ["status", "a\u202eb"], "no job named"),
            ("cancel-zero-width", ["cancel", "ti\u200bny"], "no job named"),
            ("resume-osc8-link", ["resume", "\x1b]8;;http://evil/\x1b\\x\x1b]8;;\x1b\\"], "no job"),
            ("table-nul-ish", ["table", "x\x7f\x9b"], "no trial runs"),
            ("models-bidi", ["models", "\u202e*"], "no preset"),
            (
                "train-set-bidi-name",
                ["train", "lenet5", "--set", "name='x\u202e'"],
                "text-direction",
            ),
            (
                "train-set-escape-name",
                ["train", "lenet5", "--set", 'name="\\u001b]0;T\\u0007"'],
                "control characters",
            ),
            ("train-escape-dataset", ["train", "lenet5", "-d", "\x1b[2J"], "dataset"),
            ("report-escape-out", ["report", "x", "--out", "o\x1b[2J"], "no trial runs"),
            ("plan-markup-gpu", ["plan", "[/]x.toml", "--gpu", "[bold]"], "toml"),
            ("table-markup-normalize", ["table", "x", "--normalize-to", "[/]"], "no trial runs"),
            ("cluster-escape-action", ["cluster", "\x1b]0;T\x07"], "unknown action"),
        )
    ],
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_corpus(CASES, tmp_path_factory.mktemp("hostile-corpus"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_corpus(case: Case, results: dict) -> None:
    check(case, results[case.id])


# ---------------------------------------------------------------- the escaping helpers

STRINGS = [
    "x[/]",
    "[bold]x",
    "a\\",
    "a\\[/]",
    "[link=file:///etc/passwd]x[/link]",
    "\x1b]0;T\x07",
    "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\",
    "\x1b[2J\x1b[H",
    "\x9b31mred",
    "abc\u202edef",
    "tab\there\nnewline",
    "\x00nul\x7fdel",
]


@pytest.mark.parametrize("text", STRINGS, ids=repr)
def test_safe_prints_exactly_the_visible_text(text: str) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    console.print(f"[red]{safe(text)}[/] end", highlight=False)
    printed = out.getvalue()
    assert ESC not in printed and "\x9b" not in printed and "\u202e" not in printed
    assert printed == f"{plain(text)} end\n"
    assert "\n" not in plain(text) and "\t" not in plain(text)


def test_live_display_escapes_names_and_messages() -> None:
    from orchestrator.cli.live import LiveDisplay
    from orchestrator.spec.load import parse_job

    job = parse_job(
        {
            "job": {"name": JOB},
            "trial": [{"name": "t[/]", "model": "lenet5", "dataset": "digits", "epochs": 1}],
        },
        "test",
    )
    display = LiveDisplay(job, skipped=set())
    key = job.trials[0].key
    display.rows[key].update(state="FAILED", msg="boom [/] " + NASTY)
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(display._render())
    assert ESC not in out.getvalue() and "t[/]" in out.getvalue() and JOB in out.getvalue()


# ---------------------------------------------------------------- archive bombs

GiB = 1 << 30


def _bomb(path: Path, members: dict[str, int]) -> Path:
    """A small .tar.gz whose headers declare `members` (name -> size) but hold no data."""
    blob = b"".join(_header(name, size) for name, size in members.items()) + bytes(1024)
    path.write_bytes(gzip.compress(blob))
    return path


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.GNU_FORMAT)


BOMBS = {
    "cifar10-batch-1GiB": (
        "cifar10",
        "cifar-10-python.tar.gz",
        {"cifar-10-batches-py/data_batch_1": GiB},
    ),
    "cifar10-test-1GiB": (
        "cifar10",
        "cifar-10-python.tar.gz",
        {"cifar-10-batches-py/test_batch": GiB},
    ),
    "cifar10-meta-100MiB": (
        "cifar10",
        "cifar-10-python.tar.gz",
        {"cifar-10-batches-py/batches.meta": 100 << 20},
    ),
    "cifar100-train-8GiB": (
        "cifar100",
        "cifar-100-python.tar.gz",
        {"cifar-100-python/train": 8 * GiB},
    ),
    "cifar10-unknown-member-1GiB": (
        "cifar10",
        "cifar-10-python.tar.gz",
        {"cifar-10-batches-py/readme.html": GiB},
    ),
    "cifar10-too-many-members": (
        "cifar10",
        "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/x{i}": 0 for i in range(1500)},
    ),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_archive_bomb_is_refused_before_reading(tmp_path: Path, bomb: str) -> None:
    dataset, archive, members = BOMBS[bomb]
    path = _bomb(tmp_path / archive, members)
    assert path.stat().st_size < 1 << 20  # small on disk
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(DatasetError, match=r"declares|members") as e:
            load_dataset(dataset, data_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - t0 < 10
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"
    assert "download" in str(e.value) and "\n" not in str(e.value)


def test_folder_member_bomb_is_refused_by_its_size(tmp_path: Path) -> None:
    """The extracted form: a sparse 1 GiB data_batch_1 (no disk used) is not read."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "data_batch_1", "wb") as f:
        f.truncate(GiB)
    with pytest.raises(DatasetError, match=r"data_batch_1.*declares"):
        load_dataset("cifar10", data_dir=tmp_path)


# ---------------------------------------------------------------- hostile dataset folders


def _tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _symlink_member(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _zip_named_tar(folder: Path) -> None:
    import zipfile

    with zipfile.ZipFile(folder / "cifar-10-python.tar.gz", "w") as z:
        z.writestr("cifar-10-batches-py/data_batch_1", b"x")


def _gzip_of_zeros(folder: Path) -> None:
    """1 GiB of zeros in 1 MB: no tar header is ever found, the stream must not be held."""
    with gzip.open(folder / "cifar-10-python.tar.gz", "wb", compresslevel=9) as g:
        chunk = bytes(1 << 20)
        for _ in range(1024):
            g.write(chunk)


def _evil_pickles(folder: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {folder / 'PWNED'}",))

    batches = folder / "cifar-10-batches-py"
    batches.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    for name in names:
        (batches / name).write_bytes(pickle.dumps(Evil()))


HOSTILE_DATA = {
    # a dataset folder that is a symlink to somewhere else entirely
    "folder-symlink-to-etc": (
        "cifar10",
        lambda d: (d / "cifar-10-batches-py").symlink_to("/etc"),
        "incomplete cifar10 data",
    ),
    # one member a symlink out of the folder
    "member-symlink-to-passwd": (
        "cifar10",
        lambda d: (
            (d / "cifar-10-batches-py").mkdir(),
            (d / "cifar-10-batches-py" / "data_batch_1").symlink_to("/etc/passwd"),
        ),
        "cifar10",
    ),
    "archive-symlink-member": (
        "cifar10",
        lambda d: _tar_gz(
            d / "cifar-10-python.tar.gz",
            [(_symlink_member("cifar-10-batches-py/data_batch_1", "/etc/passwd"), None)],
        ),
        "incomplete cifar10 data",
    ),
    "archive-path-traversal": (
        "cifar10",
        lambda d: _tar_gz(
            d / "cifar-10-python.tar.gz",
            [_file_member("../../evil.txt", b"x"), _file_member("/tmp/evil-abs.txt", b"x")],
        ),
        "incomplete cifar10 data",
    ),
    "zip-named-tar-gz": ("cifar10", _zip_named_tar, "cannot read the archive"),
    "gzip-of-zeros": ("cifar10", _gzip_of_zeros, "cifar-10-python.tar.gz"),
    "pickles-that-run-code": ("cifar10", _evil_pickles, "not a valid CIFAR pickle"),
    "svhn-random-bytes": (
        "svhn",
        lambda d: (
            (d / "train_32x32.mat").write_bytes(os.urandom(4096)),
            (d / "test_32x32.mat").write_bytes(os.urandom(4096)),
        ),
        "cannot read the .mat file",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_DATA))
def test_hostile_dataset_folder_is_refused_in_one_line(tmp_path: Path, case: str) -> None:
    """Each refused with one line naming the file and what to do; nothing runs, nothing is
    written outside the folder, in bounded time and memory."""
    dataset, build, fragment = HOSTILE_DATA[case]
    data = tmp_path / "data"
    data.mkdir()
    build(data)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(DatasetError) as e:
            load_dataset(dataset, data_dir=data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 60
    assert peak < 256 << 20, f"peak {peak / 2**20:.0f} MiB"
    (line,) = e.value.lines()  # what the CLI prints: one line, whatever the library said
    assert fragment in line, line
    assert not (data / "PWNED").exists()
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-abs.txt").exists()


@pytest.mark.parametrize("where", ["missing", "a-file"])
def test_a_data_folder_that_is_not_there_is_said_first(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--data-dir (or $ORCH_DATA_DIR) naming nothing, or a file: the message opens with it,
    not after ten paths tried."""
    monkeypatch.setenv("ORCH_OFFLINE", "1")
    named = tmp_path / "nope"
    if where == "a-file":
        named.write_text("x")
    for kwargs, env, origin in (
        ({"data_dir": named}, None, "data_dir"),
        ({}, str(named), "$ORCH_DATA_DIR"),
    ):
        if env:
            monkeypatch.setenv("ORCH_DATA_DIR", env)
        with pytest.raises(DatasetError) as e:
            load_dataset("cifar10", **kwargs)
        what = "does not exist" if where == "missing" else "is not a folder"
        assert str(e.value).startswith(f"dataset 'cifar10' not found ({origin} {named} {what})")
