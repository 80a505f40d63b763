"""A process that holds SQLite connections keeps its POSIX locks while orch checks the same
file again (a second Ledger in the driver, a tracking-store check): closing any descriptor
of a file drops every such lock the process holds, and another process's `orch status`
then deleted the WAL the driver was still writing to, so its later writes reached no
other reader (and would be lost with the driver)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from orchestrator.errors import LedgerError
from orchestrator.ledger import Ledger
from orchestrator.spec.load import parse_job
from orchestrator.stores import check_sqlite_file

RAW = {
    "job": {"name": "w"},
    "defaults": {"dataset": "digits", "epochs": 2},
    "trial": [{"name": "t", "model": "lenet5"}],
}


def read_in_another_process(db: Path, sql: str) -> str:
    code = (
        "import sqlite3, sys; c = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True); "
        "print(c.execute(sys.argv[2]).fetchall())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(db), sql], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_second_check_keeps_the_wal_of_a_live_connection(tmp_path: Path) -> None:
    home = tmp_path / ".orch"
    home.mkdir()
    db = home / "orch.db"
    url = f"sqlite:///{db}"
    first = Ledger(url)  # preflight's
    first.register_job(parse_job(RAW, "w.toml"))
    ledger = Ledger(url)  # submit's: its check read orch.db's header once more
    ledger.set_job_state("w", "RUNNING")
    check_sqlite_file(db, "ledger", LedgerError)  # and again, as any later check would
    assert Path(f"{db}-wal").exists()
    orch = Path(sys.executable).with_name("orch")
    env = {**os.environ, "ORCH_HOME": str(home)}
    status = subprocess.run([str(orch), "status", "w"], capture_output=True, text=True,
                            env=env, timeout=120)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert Path(f"{db}-wal").exists(), "another process deleted the live connection's WAL"
    ledger.set_waiting("w", "written after the status")
    assert "written after the status" in read_in_another_process(db, "select waiting_for from jobs")
    for engine in (first.engine, ledger.engine):
        engine.dispose()


def test_the_header_read_is_the_files_own(tmp_path: Path) -> None:
    """The kept descriptor follows the file at the path, not a file that was there before."""
    db = tmp_path / "x.db"
    sqlite3.connect(db).execute("create table a (b)").connection.commit()
    check_sqlite_file(db, "ledger", LedgerError)
    db.unlink()
    db.write_bytes(b"not a database at all" * 10)
    try:
        check_sqlite_file(db, "ledger", LedgerError)
    except LedgerError as e:
        assert "not a SQLite database" in str(e)
    else:
        raise AssertionError("a file replaced by random bytes was read through the old one")
