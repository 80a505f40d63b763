"""Error corpus, class 2: stores and configuration (issue 15 §3, and §2's tracking server).

Damaged ledger and MLflow databases, bad ledger URLs and tracking URIs, a tracking server
that refuses or never answers, bad config.toml and environment settings, a tracking URI on
the ledger's own database, and read-only commands that must create nothing.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.unit.corpus import BOUND_S, Case, check, job_file, run_corpus, write

# A port that accepts connections and never answers (the kernel completes the handshake
# from the listen backlog): a tracking server that hangs.
SILENT = socket.socket()
SILENT.bind(("127.0.0.1", 0))
SILENT.listen(64)
SILENT_URI = f"http://127.0.0.1:{SILENT.getsockname()[1]}"


class _HealthOnly(http.server.BaseHTTPRequestHandler):
    """Answers /health like an MLflow server, and then never answers a query."""

    def do_GET(self) -> None:
        if self.path.startswith("/health"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
            return
        time.sleep(3600)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


HALF = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthOnly)
HALF.daemon_threads = True
threading.Thread(target=HALF.serve_forever, daemon=True).start()
HALF_URI = f"http://127.0.0.1:{HALF.server_address[1]}"


@cache
def templates() -> Path:
    """A valid ledger (one registered job, "tiny") and MLflow store, built once."""
    root = Path(tempfile.mkdtemp(prefix="corpus-stores-"))
    job_file(root)
    code = (
        "from orchestrator.ledger import Ledger\n"
        "from orchestrator.spec.load import load_job\n"
        "from orchestrator.tracking.mlflow_store import MlflowStore\n"
        f"Ledger('sqlite:///{root}/orch.db').register_job(load_job('{root}/job.toml'))\n"
        f"MlflowStore('sqlite:///{root}/mlflow.db').experiment_id('tiny')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    # cwd: MLflow puts a SQLite store's artifacts under ./mlruns of the creating process
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root, timeout=300)
    return root


def with_store(name: str, damage: str = "") -> object:
    """Setup: the job file, and .orch/<name> copied from the templates, then damaged."""

    def setup(folder: Path) -> None:
        job_file(folder)
        home = folder / ".orch"
        home.mkdir()
        for db in ("orch.db", "mlflow.db"):
            shutil.copy(templates() / db, home / db)
        target = home / name
        if damage == "random":
            target.write_bytes(os.urandom(8192))
        elif damage == "truncated":
            data = target.read_bytes()
            target.write_bytes(data[: max(4096, len(data) // 3 // 4096 * 4096)])
        elif damage == "header-only":
            target.write_bytes(target.read_bytes()[:50])
        elif damage == "empty":
            target.write_bytes(b"")
        elif damage == "folder":
            target.unlink()
            target.mkdir()

    return setup


def config(text: str | bytes) -> object:
    def setup(folder: Path) -> None:
        job_file(folder)
        if text == "<folder>":
            (folder / ".orch" / "config.toml").mkdir(parents=True)
        else:
            write(folder / ".orch" / "config.toml", text)

    return setup


def home_is_file(folder: Path) -> None:
    job_file(folder)
    write(folder / "home", "not a folder")


def app_db(folder: Path) -> None:
    """Another application's SQLite database."""
    import sqlite3

    job_file(folder)
    with sqlite3.connect(folder / "app.db") as conn:
        conn.execute("CREATE TABLE users (name TEXT)")


def file_here(folder: Path) -> None:
    job_file(folder)
    write(folder / "afile", "x")


def locked_ledger(folder: Path) -> None:
    """A ledger another process holds an exclusive lock on, until this case has printed its
    error (or two minutes pass): a sqlite3 shell with a transaction open, say."""
    job_file(folder)
    (folder / ".orch").mkdir()
    db, err = folder / ".orch" / "orch.db", folder / ".case.err"
    holder = (
        "import os, sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('CREATE TABLE IF NOT EXISTS held (a)')\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "end = time.monotonic() + 120\n"
        f"while time.monotonic() < end and not (os.path.exists({str(err)!r}) and "
        f"os.path.getsize({str(err)!r})):\n"
        "    time.sleep(0.2)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"


def old_ledger(folder: Path) -> None:
    """A ledger from an older orch: fewer columns, and a job whose trials are gone."""
    import sqlite3

    (folder / ".orch").mkdir()
    with sqlite3.connect(folder / ".orch" / "orch.db") as conn:
        conn.executescript(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT);"
            "CREATE TABLE trials (id INTEGER PRIMARY KEY);"
            "INSERT INTO jobs VALUES (1, 'old');"
        )


def foreign_jobs_table(folder: Path) -> None:
    import sqlite3

    (folder / ".orch").mkdir()
    with sqlite3.connect(folder / ".orch" / "orch.db") as conn:
        conn.execute("CREATE TABLE jobs (a TEXT, b TEXT, c TEXT)")


WRITES = (".orch",)  # what a writing command (submit) may create
L, T = "ORCH_LEDGER_URL", "ORCH_TRACKING_URI"
READ = ("status", "plan", "table", "report", "cancel", "logs", "resume")


def args(cmd: str) -> list[str]:
    return {
        "status": ["status"],
        "status-job": ["status", "tiny"],
        "plan": ["plan", "job.toml"],
        "submit": ["submit", "job.toml"],
        "table": ["table", "tiny"],
        "report": ["report", "tiny"],
        "cancel": ["cancel", "tiny"],
        "logs": ["logs", "tiny"],
        "resume": ["resume", "tiny"],
        "train": ["train", "lenet5", "--epochs", "1"],
        "validate": ["validate", "job.toml"],
        "models": ["models", "lenet*"],
    }[cmd]


CASES: list[Case] = [
    # damaged ledger
    *[
        Case(
            f"ledger-random-{cmd}",
            args(cmd),
            setup=with_store("orch.db", "random"),
            match="orch.db.*not a SQLite database",
            real=cmd == "status",
        )
        for cmd in ("status", "status-job", "plan", "submit", "cancel", "logs", "resume")
    ],
    *[
        Case(
            f"ledger-truncated-{cmd}",
            args(cmd),
            setup=with_store("orch.db", "truncated"),
            match="orch.db.*truncated",
        )
        for cmd in ("status", "plan", "submit", "cancel")
    ],
    Case(
        "ledger-header-only-status",
        ["status"],
        setup=with_store("orch.db", "header-only"),
        match="truncated",
    ),
    Case(
        "ledger-folder-status",
        ["status"],
        setup=with_store("orch.db", "folder"),
        match="not a file",
    ),
    Case(
        "ledger-folder-submit",
        ["submit", "job.toml"],
        setup=with_store("orch.db", "folder"),
        match="not a file",
    ),
    Case(
        "ledger-empty-file-is-empty-ledger",
        ["status"],
        setup=with_store("orch.db", "empty"),
        kind="ok",
        creates=(".orch",),
    ),
    # damaged MLflow store
    *[
        Case(
            f"mlflow-{damage}-{cmd}",
            args(cmd),
            setup=with_store("mlflow.db", damage),
            match="mlflow.db.*(not a SQLite database|truncated|not a file)",
            creates=WRITES,
        )
        for damage in ("random", "truncated", "folder")
        for cmd in ("table", "report", "submit")
    ],
    # ledger URLs
    *[
        Case(f"ledger-url-{name}-{cmd}", args(cmd), env={L: url}, setup=file_here, match=m)
        for name, url, m in (
            ("garbage", "garbage", "not a database URL"),
            ("unknown-scheme", "foo://host/db", "unknown database kind"),
            ("asyncpg-missing", "postgresql+asyncpg://u@localhost/db", "asyncpg.*not installed"),
            ("mysql-missing", "mysql://u@localhost/db", "not installed"),
            ("pg-nosuchdriver", "postgresql+nosuchdriver://u@localhost/db", "unknown database"),
            ("under-a-file", "sqlite:///{dir}/afile/orch.db", "afile"),
            ("spaces", "sqlite:// /x", "ledger"),
        )
        for cmd in ("status", "submit", "cancel")
    ],
    # tracking URIs
    *[
        Case(
            f"tracking-{name}-{cmd}",
            args(cmd),
            env={T: uri},
            setup=file_here,
            match=m,
            real=name == "refused" and cmd == "table",
        )
        for name, uri, m in (
            ("garbage", "garbage", "tracking URI 'garbage'"),
            ("unknown-scheme", "foo://x", "scheme 'foo'"),
            ("file-scheme", "file:///tmp/mlruns", "scheme 'file'"),
            ("http-no-host", "http://", "no host"),
            ("refused", "http://127.0.0.1:1", "127.0.0.1:1.*does not answer"),
            ("mysql-missing", "mysql://u@localhost/db", "not installed"),
            ("asyncpg-missing", "postgresql+asyncpg://u@localhost/db", "not installed"),
            ("under-a-file", "sqlite:///{dir}/afile/m.db", "afile"),
        )
        for cmd in ("table", "report", "submit")
    ],
    Case(
        "tracking-silent-server-table",
        ["table", "tiny"],
        env={T: SILENT_URI},
        match="does not answer",
        real=True,
    ),
    Case(
        "tracking-silent-server-report",
        ["report", "tiny"],
        env={T: SILENT_URI},
        match="does not answer",
    ),
    *[
        Case(
            f"tracking-health-only-server-{cmd}",
            args(cmd),
            env={T: HALF_URI},
            match="tracking (server|store) at http",
        )
        for cmd in ("table", "report")
    ],
    # the tracking URI on the ledger's own database
    *[
        Case(
            f"tracking-is-ledger-{cmd}",
            args(cmd),
            env={L: "sqlite:///{dir}/shared.db", T: "sqlite:///./shared.db"},
            setup=file_here,
            match="ledger's own database",
        )
        for cmd in ("table", "status", "submit", "report")
    ],
    Case(
        "tracking-is-ledger-postgres",
        ["status"],
        env={
            L: "postgresql://postgres@127.0.0.1/test",
            T: "postgresql+psycopg2://postgres@localhost:5432/test",
        },
        match="ledger's own database",
    ),
    # a store that is the other store's database, or another application's
    Case(
        "tracking-at-a-ledger-table",
        ["table", "tiny"],
        setup=with_store("orch.db"),
        env={T: "sqlite:///{dir}/.orch/orch.db", L: "sqlite:///{dir}/other.db"},
        match="is orch's ledger",
    ),
    Case(
        "tracking-at-a-ledger-submit",
        ["submit", "job.toml"],
        setup=with_store("orch.db"),
        env={T: "sqlite:///{dir}/.orch/orch.db", L: "sqlite:///{dir}/other.db"},
        match="is orch's ledger",
    ),
    Case(
        "ledger-at-mlflow-store",
        ["status"],
        setup=with_store("orch.db"),
        env={L: "sqlite:///{dir}/.orch/mlflow.db", T: "sqlite:///{dir}/m2.db"},
        match="not orch's ledger",
    ),
    *[
        Case(
            f"{which}-at-another-apps-db-{cmd}",
            args(cmd),
            setup=app_db,
            env={var: "sqlite:///{dir}/app.db"},
            match="not .*(users)",
        )
        for which, var, cmds in (
            ("tracking", T, ("table", "report", "submit")),
            ("ledger", L, ("status", "cancel", "submit")),
        )
        for cmd in cmds
    ],
    # config.toml
    *[
        Case(f"config-{name}", ["status"], setup=config(text), match=m)
        for name, text, m in (
            ("ledger-url-int", "ledger_url = 3\n", "ledger_url: must be a non-empty string"),
            ("storage-bool", "storage = true\n", "storage: must be"),
            ("offline-string", 'offline = "yes"\n', "offline: must be true or false"),
            ("tracking-uri-list", "tracking_uri = []\n", "tracking_uri: must be"),
            ("ray-address-empty", 'ray_address = ""\n', "ray_address: must be"),
            ("unknown-key", 'ledger = "x"\n', "unknown key 'ledger'"),
            ("invalid-toml", "ledger_url = \n", "not valid TOML"),
            ("binary", bytes(range(256)), "not a text file"),
            ("latin1", "ledger_url = 'caf\xe9'\n".encode("latin-1"), "not a text file"),
            ("folder", "<folder>", "is not a file"),
        )
    ],
    Case(
        "config-binary-table",
        ["table", "tiny"],
        setup=config(bytes(range(256))),
        match="config.toml",
    ),
    Case("config-folder-plan", ["plan", "job.toml"], setup=config("<folder>"), match="config.toml"),
    # ORCH_HOME a regular file
    *[
        Case(
            f"home-is-file-{cmd}",
            args(cmd),
            env={"ORCH_HOME": "{dir}/home"},
            setup=home_is_file,
            match="ORCH_HOME .* is a file",
        )
        for cmd in ("status", "table", "submit", "train", "plan")
    ],
    # numeric settings, read when scheduling.submit is imported: the runner's children import
    # it themselves, so their environment applies; one case runs the real script
    *[
        Case(
            f"env-{var.lower()}-{name}-{cmd}",
            args(cmd),
            env={var: value},
            setup=file_here,
            match=var,
            real=(var, name, cmd) == ("ORCH_LEASE_TTL_S", "abc", "submit"),
        )
        for var, name, value, cmd in (
            ("ORCH_LEASE_TTL_S", "abc", "abc", "status"),
            ("ORCH_LEASE_TTL_S", "abc", "abc", "submit"),
            ("ORCH_LEASE_TTL_S", "negative", "-5", "status"),
            ("ORCH_LEASE_TTL_S", "nan", "nan", "status"),
            ("ORCH_INFEASIBLE_GRACE_S", "abc", "abc", "submit"),
            ("ORCH_INFEASIBLE_GRACE_S", "zero", "0", "status"),
        )
    ],
    # tracking URIs that do not parse as an address: a port that is no number or out of
    # range, an unclosed IPv6 bracket (these were unexpected InvalidURL/ValueError)
    *[
        Case(f"tracking-{name}-{cmd}", args(cmd), env={T: uri}, match=m)
        for name, uri, m in (
            ("port-abc", "http://127.0.0.1:abc", "127.0.0.1:abc' is not a valid address"),
            ("port-99999", "http://127.0.0.1:99999", "Port out of range"),
            ("ipv6-unclosed", "http://[::1", "Invalid IPv6"),
            ("https-port-abc", "https://h:abc", "not a valid address"),
        )
        for cmd in ("table", "report")
    ],
    Case("tracking-port-abc-submit", args("submit"), env={T: "http://h:abc"}, setup=file_here,
         match="not a valid address"),
    Case("tracking-ipv6-refused", ["table", "tiny"], env={T: "http://[::1]:1"},
         match="\\[::1\\]:1 does not answer"),
    Case("tracking-unknown-host", ["table", "tiny"], env={T: "http://nosuchhost.invalid:5000"},
         match="does not answer"),
    Case("tracking-databricks-bare", ["table", "tiny"], env={T: "databricks"}, match="plain path"),
    Case("tracking-folder", ["table", "tiny"], env={T: "sqlite:///{dir}"}, match="not a file"),
    Case("tracking-pg-refused", ["table", "tiny"], env={T: "postgresql+psycopg2://u@127.0.0.1:1/d"},
         match="cannot read the MLflow tracking store"),
    # ledger URLs
    Case("ledger-url-blank", ["status"], env={L: "   "}, match="not a database URL"),
    Case("ledger-url-http", ["status"], env={L: "http://127.0.0.1:1/db"}, match="unknown database"),
    Case("ledger-url-port-abc", ["status"], env={L: "postgresql://u@h:abc/db"},
         match="not a database URL"),
    Case("ledger-pg-refused", ["status"], env={L: "postgresql+psycopg2://u@127.0.0.1:1/db"},
         match="cannot open the ledger.*Connection refused"),
    Case("ledger-folder-env", ["status"], env={L: "sqlite:///{dir}"}, match="not a file"),
    Case("ledger-in-memory-is-fine", ["status"], env={L: "sqlite://"}, kind="ok"),
    Case("ledger-relative-is-fine", ["status"], env={L: "sqlite:///rel/orch.db"}, kind="ok"),
    Case("ledger-locked-status", ["status"], setup=locked_ledger,
         match="is locked. Another process holds a lock", real=True),
    Case("ledger-locked-cancel", ["cancel", "tiny"], setup=locked_ledger, match="locked"),
    Case("ledger-foreign-jobs-table", ["status"], setup=foreign_jobs_table,
         match="not orch's ledger table.*Point ORCH_LEDGER_URL"),
    Case("ledger-old-with-trialless-job", ["status"], setup=old_ledger, kind="ok",
         check=lambda d, r: "job old" in r.stdout),
    Case("ledger-old-with-trialless-job-named", ["status", "old"], setup=old_ledger, kind="ok"),
    # config.toml
    *[
        Case(f"config-{name}", ["status"], setup=config(text), match=m)
        for name, text, m in (
            ("utf16", "offline = true\n".encode("utf-16"), "UTF-16.*save it as UTF-8"),
            ("nul-in-url", 'ledger_url = "sqlite:///x\\u0000y"\n', "ledger_url: must not "
             "contain control characters"),
            ("escape-in-storage", 'storage = "/x\\u001b[2J"\n', "storage: must not contain"),
            ("newline-in-uri", 'tracking_uri = "sqlite:///a\\nb"\n', "tracking_uri"),
            ("nested-table", "[ledger_url]\nx = 1\n", "ledger_url: must be a non-empty string"),
            ("artifact-root-int", "artifact_root = 3\n", "artifact_root"),
            ("ledger-garbage", 'ledger_url = "garbage"\n', "not a database URL"),
            ("typo-key", 'tracking_url = "sqlite:///m.db"\n', "Did you mean: tracking_uri"),
        )
    ],
    Case("config-nul-table", ["table", "tiny"], setup=config('tracking_uri = "sqlite:///x\\u0000"\n'),
         match="tracking_uri: must not contain"),
    Case("config-bom-is-fine", ["status"], setup=config(b"\xef\xbb\xbfoffline = true\n"),
         kind="ok"),
    Case("config-empty-is-fine", ["status"], setup=config(""), kind="ok"),
    Case("config-ray-address-bad", ["submit", "job.toml"], setup=config('ray_address = "foo"\n'),
         match="config.toml: ray_address 'foo': not a Ray address"),
    # environment
    Case("env-ray-address-garbage", ["submit", "job.toml"], setup=file_here,
         env={"ORCH_RAY_ADDRESS": "foo"}, match="ORCH_RAY_ADDRESS 'foo'"),
    Case("env-ray-address-ray-client", ["cluster", "check"],
         env={"ORCH_RAY_ADDRESS": "ray://h:10001"}, match="ORCH_RAY_ADDRESS.*not supported"),
    Case("env-ray-address-port-65536", ["cluster", "check"],
         env={"ORCH_RAY_ADDRESS": "127.0.0.1:65536"}, match="ORCH_RAY_ADDRESS"),
    Case("env-ray-address-ipv6-refused", ["cluster", "check"],
         env={"ORCH_RAY_ADDRESS": "[::1]:1"}, match="cannot connect"),
    Case("env-lease-ttl-inf", ["status"], env={"ORCH_LEASE_TTL_S": "inf"}, match="ORCH_LEASE"),
    # numbers read mid-job: refused before the command starts anything (they fell back to
    # their default, or failed once the job was running)
    *[
        Case(f"env-{var.lower()}-{value}-{cmd}", args(cmd), env={var: value}, setup=file_here,
             match=f"{var}: must be a number")
        for var, value, cmd in (
            ("ORCH_LEDGER_RETRY_S", "abc", "status"),
            ("ORCH_LEDGER_RETRY_S", "-1", "submit"),
            ("ORCH_TRACKING_WAIT_S", "nan", "table"),
            ("ORCH_MIGRATE_RESTART_S", "inf", "submit"),
            ("ORCH_MIGRATE_MIN_GAIN_S", "0", "plan"),
            ("ORCH_MIGRATE_MIN_SHARE", "-0.5", "submit"),
            ("ORCH_PROFILE_MAX_SHARE", "zero", "submit"),
        )
    ],
    Case("env-ledger-retry-zero-is-fine", ["status"], env={"ORCH_LEDGER_RETRY_S": "0"},
         kind="ok"),
    Case("env-grace-1e400", ["status"], env={"ORCH_INFEASIBLE_GRACE_S": "1e400"},
         match="ORCH_INFEASIBLE_GRACE_S"),
    Case("env-home-dev-null", ["status"], env={"ORCH_HOME": "/dev/null"},
         match="ORCH_HOME /dev/null is a file"),
    Case("env-home-empty-is-default", ["status"], env={"ORCH_HOME": ""}, kind="ok"),
    Case("home-storage-is-a-file", ["train", "lenet5", "--epochs", "1"],
         setup=lambda d: write(d / ".orch" / "storage", "x"), match="cannot write checkpoints"),
    Case("home-reports-is-a-file", ["report", "tiny"],
         setup=lambda d: write(d / ".orch" / "reports", "x"), match="no trial runs|reports"),
    Case("zero-byte-ledger-cancel", ["cancel", "tiny"],
         setup=lambda d: write(d / ".orch" / "orch.db", b""), match="no job named"),
    Case("zero-byte-mlflow-table", ["table", "tiny"],
         setup=lambda d: write(d / ".orch" / "mlflow.db", b""), match="no trial runs"),
    # read-only commands create nothing
    Case("readonly-status", ["status"], kind="ok"),
    Case("readonly-validate", ["validate", "job.toml"], setup=file_here, kind="ok"),
    Case("readonly-models", ["models", "lenet*"], kind="ok"),
    Case("readonly-plan", ["plan", "job.toml"], setup=file_here, kind="ok"),
    *[
        Case(f"readonly-{cmd}", args(cmd), setup=file_here, match="tiny")
        for cmd in ("status-job", "table", "report", "cancel", "logs", "resume")
    ],
    Case(
        "readonly-table-tracking-in-missing-folder",
        ["table", "tiny"],
        env={T: "sqlite:///{dir}/no/such/dir/mlflow.db"},
        match="no trial runs",
    ),
    Case(
        "readonly-report-tracking-in-missing-folder",
        ["report", "tiny"],
        env={T: "sqlite:///{dir}/no/such/dir/mlflow.db"},
        match="no trial runs",
    ),
]  # fmt: skip
# submits may create the workspace (ledger) before they stop; nothing else may
CASES = [
    Case(**{**c.__dict__, "creates": WRITES}) if c.argv[:1] == ["submit"] else c for c in CASES
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_corpus(CASES, tmp_path_factory.mktemp("stores-corpus"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_stores_corpus(case: Case, results: dict) -> None:
    check(case, results[case.id])


def test_silent_tracking_server_is_bounded(results: dict) -> None:
    """A server that accepts and never answers: refused well within issue 15's 20 s."""
    assert results["tracking-silent-server-report"].elapsed < BOUND_S
    # one that answers /health and then hangs on every query
    assert results["tracking-health-only-server-table"].elapsed < BOUND_S


def test_damaged_stores_are_left_as_they_were(results: dict) -> None:
    """A refused command does not 'repair' (overwrite) a damaged database."""
    for case_id in ("ledger-random-status", "mlflow-random-table"):
        r = results[case_id]
        name = "orch.db" if case_id.startswith("ledger") else "mlflow.db"
        assert (r.folder / ".orch" / name).stat().st_size == 8192
