"""Ledger schema upgrades: an old database opens with the current models, keeps its rows,
and gains what the models added — on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from orchestrator.errors import LedgerError
from orchestrator.ledger import Ledger
from orchestrator.ledger.migrations import MIGRATIONS, Migration, current_version, upgrade
from orchestrator.ledger.models import Base

# The jobs/trials tables as the walking skeleton created them: no owner, heartbeat_at,
# ray_address, spec_text; no speeds table at all.
OLD_SCHEMA = [
    """CREATE TABLE jobs (
        id INTEGER NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL UNIQUE,
        spec_path TEXT NOT NULL,
        experiment VARCHAR(200) NOT NULL,
        state VARCHAR(20) NOT NULL,
        mlflow_run_id VARCHAR(64),
        ray_job_id VARCHAR(100),
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE trials (
        id INTEGER NOT NULL PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        key VARCHAR(64) NOT NULL,
        name VARCHAR(200) NOT NULL,
        model VARCHAR(100) NOT NULL,
        state VARCHAR(20) NOT NULL,
        epochs_done INTEGER NOT NULL,
        epochs_total INTEGER NOT NULL,
        last_accuracy FLOAT,
        test_accuracy FLOAT,
        mlflow_run_id VARCHAR(64),
        node VARCHAR(200),
        gpu VARCHAR(100),
        attempts INTEGER NOT NULL,
        error TEXT,
        updated_at TIMESTAMP NOT NULL,
        UNIQUE (job_id, key))""",
    "INSERT INTO jobs (id, name, spec_path, experiment, state, created_at, updated_at) "
    "VALUES (1, 'old-job', 'jobs/old.toml', 'old-job', 'FINISHED', "
    "'2025-01-02 03:04:05', '2025-01-02 03:04:05')",
    "INSERT INTO trials (id, job_id, key, name, model, state, epochs_done, epochs_total, "
    "test_accuracy, attempts, updated_at) VALUES (1, 1, 'abc123', 'LeNet-5', 'lenet5', "
    "'FINISHED', 2, 2, 0.91, 1, '2025-01-02 03:04:05')",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'orch.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def _create_old(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in OLD_SCHEMA:
            conn.execute(text(stmt))
    engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_old_database_is_upgraded_and_keeps_its_rows(db_url: str) -> None:
    _create_old(db_url)
    assert "owner" not in _columns(db_url, "jobs")

    ledger = Ledger(db_url)
    try:
        for table in Base.metadata.sorted_tables:  # every model column now exists
            assert set(table.columns.keys()) <= _columns(db_url, table.name), table.name
        view = ledger.job("old-job")
        assert view is not None and view.state == "FINISHED" and view.owner is None
        assert [(t.key, t.state, t.test_accuracy) for t in view.trials] == [
            ("abc123", "FINISHED", 0.91)
        ]
        assert ledger.finished_keys("old-job") == {"abc123"}
        # The new columns work: the lead's driver lease writes owner/heartbeat_at.
        assert ledger.claim_job("old-job", "host:1") is None
        with ledger.engine.connect() as conn:
            assert conn.scalar(text("SELECT owner FROM jobs WHERE name = 'old-job'")) == "host:1"
            assert current_version(conn) == MIGRATIONS[-1].version
    finally:
        ledger.engine.dispose()

    again = Ledger(db_url)  # idempotent: nothing left to do, nothing lost
    try:
        assert upgrade(again.engine) == []
        assert again.finished_keys("old-job") == {"abc123"}
    finally:
        again.engine.dispose()


def test_scalar_defaults_fill_old_rows(db_url: str) -> None:
    """A NOT NULL column with a constant default (trials.position, default 0) is added with
    that default, so the old row reads 0, not NULL."""
    _create_old(db_url)
    Ledger(db_url).engine.dispose()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT position FROM trials WHERE key = 'abc123'")) == 0
    engine.dispose()


def test_versioned_migrations_run_once_in_order(db_url: str) -> None:
    ran: list[int] = []

    def backfill(conn) -> None:  # type: ignore[no-untyped-def]
        ran.append(2)
        conn.execute(text("UPDATE trials SET error = 'migrated' WHERE error IS NULL"))

    migrations = (*MIGRATIONS, Migration(2, "backfill trials.error", backfill))
    _create_old(db_url)
    engine = create_engine(db_url)
    try:
        done = upgrade(engine, migrations)
        assert "add column jobs.owner" in done
        assert done[-2:] == [
            "migration 1: baseline: jobs, trials, attempts",
            "migration 2: backfill trials.error",
        ]
        assert upgrade(engine, migrations) == []
        assert ran == [2]
        with engine.connect() as conn:
            assert current_version(conn) == 2
            assert conn.scalar(text("SELECT error FROM trials")) == "migrated"
    finally:
        engine.dispose()


def test_concurrent_openers_upgrade_once(db_url: str) -> None:
    """Two drivers opening an old ledger at the same moment: one upgrades, the other
    waits on the lock and finds nothing left to do. Neither fails."""
    _create_old(db_url)
    results: list[list[str] | BaseException] = []
    start = threading.Barrier(2)  # both drivers reach the upgrade together

    def open_it() -> None:
        engine = create_engine(db_url, connect_args=_busy(db_url))
        try:
            start.wait(30)
            results.append(upgrade(engine))
        except BaseException as e:
            results.append(e)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(bool(r) for r in results) == [False, True]


def test_refuses_mlflows_jobs_table(db_url: str) -> None:
    """MLflow 3 has a `jobs` table of its own: pointing the ledger at MLflow's database must
    fail clearly instead of adding our columns to it."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE jobs (id VARCHAR(36) PRIMARY KEY, creation_time BIGINT, "
                "job_name VARCHAR(500), params TEXT, workspace VARCHAR(63), status INTEGER, "
                "result TEXT, timeout FLOAT, status_details TEXT, last_update_time BIGINT)"
            )
        )
    engine.dispose()
    with pytest.raises(LedgerError, match=r"not orch's ledger table.*MLflow's database"):
        Ledger(db_url)
    assert "name" not in _columns(db_url, "jobs")


def test_migration_versions_must_ascend() -> None:
    engine = create_engine("sqlite://")
    bad = (Migration(2, "b", lambda c: None), Migration(1, "a", lambda c: None))
    with pytest.raises(ValueError, match="unique, ascending"):
        upgrade(engine, bad)


def _busy(url: str) -> dict[str, object]:
    # Without Ledger's pragmas, give SQLite the same patience with a held write lock.
    return {"timeout": 30} if url.startswith("sqlite") else {}
