"""Opening orch's two databases safely: the ledger (SQLAlchemy URL) and MLflow's tracking
store (tracking URI).

Every way they can be wrong becomes one line naming the URL and the fix, before anything
is written: a URL that does not parse, an unknown scheme, a driver that is not installed,
a SQLite file that is not a database or was cut short, a tracking server that does not
answer. Commands that only read create nothing: a SQLite store that does not exist yet
reads as empty, with no file and no folder made for it.

SQLAlchemy and MLflow are imported inside the functions: `orch --help` and `validate`
stay fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import LedgerError, OrchestratorError

SQLITE_MAGIC = b"SQLite format 3\x00"
# Database-backed MLflow stores, plus its tracking servers. A bare path is no longer a
# store in MLflow 3.17+ ("file store in maintenance mode"), so it is refused here.
TRACKING_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")
TRACKING_SERVER_SCHEMES = ("http", "https", "databricks")
DRIVERS = {  # the DBAPI module SQLAlchemy could not import -> how to get it
    "psycopg": "pip install 'psycopg[binary]', or write the URL as postgresql+psycopg2://... "
    "if psycopg2 is installed",
    "psycopg2": "pip install psycopg2-binary, or write the URL as postgresql+psycopg://... "
    "if psycopg (3) is installed",
    "MySQLdb": "pip install pymysql and write the URL as mysql+pymysql://USER@HOST/DB",
    "pyodbc": "pip install pyodbc",
}
CONNECT_TIMEOUT_S = 10  # seconds to reach a PostgreSQL ledger before giving up
PROBE_TIMEOUT_S = 5.0  # a tracking server that does not answer /health within this is down
READ_DEADLINE_S = 12.0  # all of a read command's requests to a tracking server
LEDGER_HINT = "Set ORCH_LEDGER_URL (or ledger_url in config.toml), e.g. sqlite:///.orch/orch.db."
TRACKING_HINT = (
    "Set ORCH_TRACKING_URI (or tracking_uri in config.toml) to sqlite:///PATH/mlflow.db, "
    "postgresql://USER@HOST/DB or http://HOST:5000."
)


def redact(url: str) -> str:
    """postgresql://user:secret@db/x -> postgresql://user:***@db/x: errors are printed and
    logged, passwords must not be."""
    return re.sub(r"^([A-Za-z][\w+.-]*://[^:/@]*:)[^@/]*@", r"\1***@", url)


class StoreError(OrchestratorError):
    """The MLflow tracking store cannot be used as configured."""


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for other URLs and in-memory databases)."""
    m = re.match(r"^sqlite(\+\w+)?:///(.*)$", url.strip())
    if m is None:
        return None
    path = m.group(2).split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


# One read-only descriptor per SQLite file whose header was read, kept open until the
# process ends. Closing any descriptor of a file drops every POSIX lock the process holds
# on it, SQLite's own included (fcntl semantics); another process's connection then thinks
# it is the last one and deletes the WAL that this process's live connection still writes
# to (seen: the driver's ledger writes vanished after an `orch status`). Never closing is
# the fix; the descriptor also keeps its inode from being reused, so the key stays true.
_HEADER_FDS: dict[tuple[int, int], int] = {}


def read_header(path: Path) -> bytes:
    """The first 100 bytes of a file, through a descriptor that is never closed."""
    st = path.stat()
    key = (st.st_dev, st.st_ino)
    fd = _HEADER_FDS.get(key)
    if fd is None:
        fd = _HEADER_FDS[key] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return os.pread(fd, 100, 0)


def check_sqlite_file(path: Path, what: str, error: type[OrchestratorError]) -> None:
    """A SQLite file that exists must be one: not a folder, not random bytes, not cut
    short. Reads its 100-byte header only; a missing file is fine (created on first write)."""
    if not path.exists():
        if not path.parent.exists() or path.parent.is_dir():
            return
        raise error(f"{what} {path}: {path.parent} is not a folder. Point the URL elsewhere.")
    lost = "finished trials would train again" if error is LedgerError else "its runs would be gone"
    fix = f"Restore it from a backup, or move it away to start an empty one ({lost})."
    if not path.is_file():
        raise error(f"{what} {path} is not a file. Point the URL at a SQLite file.")
    try:
        header = read_header(path)
    except OSError as e:
        raise error(
            f"{what} {path}: cannot read it: {e.strerror}. Check its permissions."
        ) from None
    size = path.stat().st_size
    if size == 0:
        return  # SQLite treats an empty file as an empty database
    if not header.startswith(SQLITE_MAGIC[: len(header)]) or len(header) < len(SQLITE_MAGIC):
        raise error(f"{what} {path} is not a SQLite database (damaged or another file). {fix}")
    if len(header) < 100:
        raise error(f"{what} {path} is truncated ({size} bytes, shorter than its header). {fix}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96] and pages > 0
    wal = Path(f"{path}-wal")
    pending_wal = wal.exists() and wal.stat().st_size > 0  # pages may live in the WAL yet
    if header_valid and not pending_wal and size < pages * page_size:
        raise error(
            f"{what} {path} is truncated: {size} bytes, but its header says "
            f"{pages} pages of {page_size} bytes. {fix}"
        )


LEDGER_TABLES = {"jobs", "trials"}  # orch's own (ledger/models.py)
MLFLOW_TABLES = {"experiments", "runs"}


def sqlite_tables(path: Path) -> set[str]:
    """The tables of an existing SQLite file, read without writing anything."""
    import sqlite3

    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {r[0] for r in rows}
    except sqlite3.Error:
        return set()  # unreadable as a database: check_sqlite_file has said why, or will


def check_not_the_other_store(path: Path, what: str, error: type[OrchestratorError]) -> None:
    """The ledger must not be an MLflow store, nor the tracking store orch's ledger: each
    would create its tables inside the other."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    tables = sqlite_tables(path) - {"sqlite_sequence", "alembic_version"}
    mine, other, name, kind = (
        (LEDGER_TABLES, MLFLOW_TABLES, "an MLflow tracking store", "orch's ledger")
        if error is LedgerError
        else (MLFLOW_TABLES, LEDGER_TABLES, "orch's ledger", "an MLflow tracking store")
    )
    if not tables or mine <= tables:
        return
    if error is LedgerError and "jobs" in tables:
        return  # an MLflow 3 store has a `jobs` table: the ledger's migrations say so
    if other <= tables:
        found = f"is {name}"
    else:
        listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        found = f"holds tables that are not {kind}'s ({listed})"
    raise error(
        f"{what} {path} {found}, and orch would add its tables to it. Point it at a "
        "database of its own, e.g. the default under ORCH_HOME (unset the variable)."
    )


def _parse(url: str, what: str, hint: str, error: type[OrchestratorError]) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise error(f"{what} {redact(url)!r} is not a database URL. {hint}") from None


def check_database_url(url: str, what: str, hint: str, error: type[OrchestratorError]) -> None:
    """The URL parses, names a dialect SQLAlchemy knows, and its driver is installed."""
    from sqlalchemy.exc import NoSuchModuleError

    parsed = _parse(url, what, hint, error)
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise error(
            f"{what} {redact(url)!r}: unknown database kind {parsed.drivername!r}. {hint}"
        ) from None
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    try:  # imports the driver and checks the dialect's own URL rules; connects to nothing
        create_engine(url).dispose()
    except ImportError as e:
        install = DRIVERS.get(e.name or "", f"install the {e.name} package")
        raise error(
            f"{what} {redact(url)!r}: its database driver {e.name!r} is not installed. "
            f"Fix: {install}."
        ) from None
    except (ArgumentError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"{what} {redact(url)!r} is not a valid URL ({first}). {hint}") from None
    path = sqlite_path(url)
    if path is not None:
        check_sqlite_file(path, what, error)
        check_not_the_other_store(path, what, error)


def ledger_engine(url: str) -> Any:
    """A SQLAlchemy engine on the ledger, or LedgerError naming what is wrong."""
    from sqlalchemy import create_engine

    check_database_url(url, "the ledger", LEDGER_HINT, LedgerError)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    args: dict[str, Any] = {}
    if url.startswith(("postgresql", "postgres")) and "connect_timeout" not in url:
        # libpq waits ~2 minutes per address on a host that drops packets: bounded here
        args["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return create_engine(url, pool_pre_ping=True, **args)


def ledger_exists(url: str) -> bool:
    """False only for a SQLite ledger whose file is not there yet (nothing to read). A URL
    that could never be opened is a LedgerError here too, not an empty ledger."""
    check_database_url(url, "the ledger", LEDGER_HINT, LedgerError)
    path = sqlite_path(url)
    return path is None or path.exists()


def check_tracking_uri(uri: str) -> None:
    """A tracking URI MLflow can use: a database URL (checked as such) or a server."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme in TRACKING_DB_SCHEMES:
        check_database_url(uri, "the MLflow tracking store", TRACKING_HINT, StoreError)
        return
    if scheme in TRACKING_SERVER_SCHEMES:
        shown = redact(uri)
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
        except ValueError as e:  # a bad port, an unclosed [IPv6 bracket
            raise StoreError(
                f"the MLflow tracking URI {shown!r} is not a valid address ({e}). {TRACKING_HINT}"
            ) from None
        if scheme != "databricks" and not parts.hostname:
            raise StoreError(f"the MLflow tracking URI {shown!r} names no host. {TRACKING_HINT}")
        return
    raise StoreError(
        f"the MLflow tracking URI {redact(uri)!r} is not one orch can use "
        f"({f'scheme {scheme!r}' if scheme else 'a plain path'}). {TRACKING_HINT}"
    )


def tracking_for_read(uri: str) -> str | None:
    """The tracking URI for a command that only reads, or None when there is nothing to
    read: a SQLite store not created yet (and none is created). A tracking server must
    answer within seconds; MLflow's own client is bounded too (its default is 7 retries
    over about two minutes)."""
    check_tracking_uri(uri)
    path = sqlite_path(uri)
    if path is not None:
        return uri if path.exists() and path.stat().st_size > 0 else None
    if uri.startswith(("http://", "https://")):
        bound_mlflow_http()
        probe_server(uri)
    return uri


def bound_mlflow_http(timeout_s: int = 10, retries: int = 0) -> None:
    """Cap MLflow's HTTP timeout and retries for this process unless the user set them:
    a server that answers /health but hangs on a query then fails in one 10 s request
    (MLflow's defaults, 120 s and 7 retries with backoff, wait many minutes)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_s))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))


def probe_server(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """GET <uri>/health, which every MLflow server answers, within `timeout_s`."""
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # it answered: a proxy or an auth wall is MLflow's to report
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):
            reason = f"no answer within {timeout_s:g} s"
        raise StoreError(
            f"the MLflow tracking server at {redact(uri)} does not answer ({reason}). Check that "
            "`mlflow server` (or `orch ui`) runs there and the host and port are right, or "
            "unset ORCH_TRACKING_URI to use the workspace's own store."
        ) from None


def read_records(uri: str, read: Any) -> list[Any]:
    """`read(uri)` for a command that only reads MLflow, [] when there is no store yet;
    a store that fails to answer (damaged, wrong schema) is one StoreError."""
    readable = tracking_for_read(uri)
    if readable is None:
        return []
    try:
        if readable.startswith(("http://", "https://")):
            return _with_deadline(lambda: list(read(readable)), READ_DEADLINE_S, uri)
        return list(read(readable))
    except OrchestratorError:
        raise
    except Exception as e:
        if not type(e).__module__.startswith(("mlflow", "sqlalchemy", "requests", "urllib3")):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreError(
            f"cannot read the MLflow tracking store at {redact(uri)}: {first[:200]}. "
            "Check that it is an MLflow store (and not damaged), or point ORCH_TRACKING_URI "
            "at the right one."
        ) from None


class StorageNotWritable(OrchestratorError, OSError):
    """Checkpoints cannot be written to the storage path. An OSError too, so that in a
    Ray trial Tune treats it as machine trouble and retries on another node."""

    reason = ""  # what went wrong, without the advice (cluster check words its own)

    def __str__(self) -> str:
        return str(self.args[0])


def check_storage_writable(storage: str, where: str = "") -> None:
    """Write and delete a small probe file under `storage` (a path or an object-store
    URI), before any training: a read-only or missing mount then costs no epoch of
    compute. `where` names the node in the message ("on node X")."""
    import socket
    import uuid

    from orchestrator.storage import PROBE_DIR, is_uri, local_path, object_store

    name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.txt"
    fix = (
        "Point ORCH_STORAGE (or storage in config.toml) at a folder or URI this machine can "
        "write, or fix the mount's permissions."
    )
    try:
        if is_uri(storage):

            def probe_store() -> None:
                from pyarrow.fs import FileSelector, FileType

                fs, root = object_store(storage)
                path = f"{root.rstrip('/')}/{PROBE_DIR}/{name}"
                try:  # an object store (S3, GCS) needs no folder: none is made
                    with fs.open_output_stream(path) as f:
                        f.write(b"orch")
                    made: list[str] = []
                except FileNotFoundError:  # a filesystem with folders: made, then removed
                    parts = path.split("/")[:-1]
                    folders = ["/".join(parts[: i + 1]) for i in range(len(parts))]
                    infos = fs.get_file_info([d for d in folders if d])
                    made = [i.path for i in infos if i.type == FileType.NotFound]
                    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
                    with fs.open_output_stream(path) as f:
                        f.write(b"orch")
                fs.delete_file(path)
                for folder in reversed(made):  # the deepest first, each only if empty
                    if fs.get_file_info(FileSelector(folder)):
                        break
                    fs.delete_dir(folder)

            # An object store's client retries for minutes (GCS without credentials or
            # network: 15); a deadline bounds the probe, as issue 15 asks of every address.
            if not _finished_within(probe_store, STORAGE_PROBE_S):
                late = StorageNotWritable(
                    f"storage {storage}{where}: no answer within {STORAGE_PROBE_S:g} s (is "
                    "the network there, and are its credentials set?). " + fix
                )
                late.reason = f"no answer within {STORAGE_PROBE_S:g} s"
                raise late
            return
        probe = local_path(storage).absolute() / PROBE_DIR / name
        # The folders the probe makes are removed again (the deepest first, each only if
        # empty): a command that fails later (a missing dataset) leaves no storage behind.
        made: list[Path] = []
        try:
            for attempt in range(3):
                made += [d for d in probe.parents if not d.exists() and d not in made]
                probe.parent.mkdir(parents=True, exist_ok=True)
                try:
                    probe.write_bytes(b"orch")
                    break
                except FileNotFoundError:  # a concurrent probe removed a folder it made
                    if attempt == 2:
                        raise
            probe.unlink()
        finally:
            for folder in sorted(made, key=lambda d: len(d.parts), reverse=True):
                try:
                    folder.rmdir()
                except OSError:  # another probe's file, or the folder is in use: kept
                    break
    except OrchestratorError:
        raise
    except Exception as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        failed = StorageNotWritable(
            f"storage {storage}{where}: cannot write checkpoints there ({reason}). {fix}"
        )
        failed.reason = reason
        raise failed from None


STORAGE_PROBE_S = 15.0  # an object store that has not taken a probe file by then is down


def _finished_within(fn: Any, seconds: float) -> bool:
    """fn() in a daemon thread: False if it has not returned after `seconds` (the thread
    is left behind); its exception, if it raised one."""
    import threading

    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True, name="orch-storage-probe")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return False
    if "error" in box:
        raise box["error"]
    return True


def _with_deadline(fn: Any, seconds: float, uri: str) -> Any:
    """fn() in a daemon thread, given up after `seconds`: MLflow's client may make several
    requests, each with its own timeout, so only a deadline bounds them all. The thread is
    left behind; the command ends with the error and the process exits."""
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True, name="orch-tracking-read")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StoreError(
            f"the MLflow tracking server at {redact(uri)} answers its health check but not "
            f"a query within {seconds:g} s. Check the server's load and logs, or its "
            "backend database."
        )
    if "error" in box:
        raise box["error"]
    return box["value"]
