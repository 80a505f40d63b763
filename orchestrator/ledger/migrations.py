"""Schema upgrades for the ledger, without losing data (SQLite and PostgreSQL).

Two mechanisms, both idempotent, both run by `upgrade()` each time a Ledger opens:

* Additive reconciliation: tables the models define but the database lacks are created,
  and columns a model gained since the database was created are added with
  `ALTER TABLE ... ADD COLUMN` (existing rows get the column's default, or NULL when the
  default is computed per row). This covers the usual change — a new nullable column or a
  new table — with no code beyond editing models.py.
* Explicit, versioned migrations (MIGRATIONS), for what reconciliation cannot infer:
  renames, back-fills, new indexes on old tables. Each runs once, in version order, and is
  recorded in the `schema_version` table (one row per applied version).

Nothing here drops or rewrites a column. Concurrent openers (two `orch submit` at once)
serialise on a lock — a transaction-scoped advisory lock on PostgreSQL, `BEGIN IMMEDIATE`
on SQLite — and re-inspect after taking it, so one applies and the other finds it done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.elements import TextClause

from orchestrator.errors import LedgerError
from orchestrator.ledger.models import Base, utcnow

log = logging.getLogger(__name__)

_version_meta = MetaData()
schema_version = Table(
    "schema_version",
    _version_meta,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

# Any fixed 64-bit number: the key of PostgreSQL's advisory lock for ledger upgrades.
_PG_LOCK_KEY = 0x6F726368_6C656467  # "orch" "ledg"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _baseline(conn: Connection) -> None:
    """Version 1: the jobs/trials/attempts tables as the models define them. The additive
    pass that runs before the versioned ones has already created them."""


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "baseline: jobs, trials, attempts", _baseline),)


def upgrade(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Bring the database at `engine` up to the models. Returns what was done (empty when
    the schema was current), e.g. ['add column jobs.owner', 'migration 2: ...']."""
    _check_order(migrations)
    with engine.connect() as conn:
        if not _pending(conn, migrations):  # the common case: no lock, one inspection
            conn.rollback()
            return []
    with engine.connect() as conn:
        _lock(conn)
        try:
            done = _apply(conn, migrations)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    for step in done:
        log.info("ledger schema: %s", step)
    return done


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return int(
        conn.scalar(
            select(schema_version.c.version).order_by(schema_version.c.version.desc()).limit(1)
        )
        or 0
    )


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise ValueError(f"migration versions must be unique, ascending, >= 1: {versions}")


def _pending(conn: Connection, migrations: Sequence[Migration]) -> bool:
    insp = inspect(conn)
    existing = set(insp.get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            return True
        have = {c["name"] for c in insp.get_columns(table.name)}
        if any(c.name not in have for c in table.columns):
            return True
    latest = migrations[-1].version if migrations else 0
    return current_version(conn) < latest


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # pysqlite opens no transaction before DDL by itself; take the write lock now so
        # the inspection below and the changes after it are one atomic step.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _apply(conn: Connection, migrations: Sequence[Migration]) -> list[str]:
    done: list[str] = []
    _refuse_foreign_tables(conn)
    insp = inspect(conn)
    existing = set(insp.get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            table.create(conn)
            done.append(f"create table {table.name}")
    insp = inspect(conn)  # a fresh inspector: the old one caches what it has seen
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in insp.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                _add_column(conn, table.name, column)
                done.append(f"add column {table.name}.{column.name}")
    _version_meta.create_all(conn)
    current = current_version(conn)
    for m in migrations:
        if m.version > current:
            m.apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=m.version, description=m.description, applied_at=utcnow()
                )
            )
            done.append(f"migration {m.version}: {m.description}")
    return done


def _refuse_foreign_tables(conn: Connection) -> None:
    """A table with one of the ledger's names that is not the ledger's (MLflow 3 has its own
    `jobs` table): adding our columns to it would corrupt someone else's schema. An old
    ledger table has a subset of the model's columns; a foreign one lacks the primary key
    or consists mostly of columns the model does not know."""
    insp = inspect(conn)
    existing = set(insp.get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        unknown = have - set(table.columns.keys())
        no_key = any(c.name not in have for c in table.primary_key.columns)
        if no_key or 2 * len(unknown) > len(have):
            hint = (
                " It looks like MLflow's database: give the ledger a database of its own."
                if "experiments" in existing
                else " Point ORCH_LEDGER_URL (or ledger_url in config.toml) at a database of "
                "its own, or move this one away."
            )
            raise LedgerError(
                f"table {table.name!r} at {_safe_url(conn)} is not orch's ledger table "
                f"(unknown columns: {', '.join(sorted(unknown)) or '-'}).{hint}"
            )


def _add_column(conn: Connection, table: str, column: Column) -> None:
    """ALTER TABLE ADD COLUMN without constraints beyond NOT NULL. A scalar model default
    becomes the server default, so old rows get it and NOT NULL can hold; a computed
    default (created_at=utcnow) is evaluated once for all old rows, and the column stays
    nullable: ALTER TABLE cannot add NOT NULL without a constant default."""
    default = column.default
    scalar = default is not None and default.is_scalar
    arg: Any = getattr(default, "arg", None)  # ScalarElementColumnDefault / CallableColumnDefault
    added = Column(
        column.name,
        column.type,
        nullable=column.nullable or not scalar,
        server_default=_literal(arg) if scalar else None,
    )
    ddl = CreateColumn(added).compile(dialect=conn.dialect)
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"ALTER TABLE {quote(table)} ADD COLUMN {ddl}")
    if default is not None and default.is_callable:
        value = arg(None)  # SQLAlchemy wraps the callable to take a context
        conn.execute(text(f"UPDATE {quote(table)} SET {quote(column.name)} = :v"), {"v": value})


def _literal(value: object) -> TextClause:
    if isinstance(value, bool):
        return text("1" if value else "0")
    if isinstance(value, int | float):
        return text(repr(value))
    return text("'" + str(value).replace("'", "''") + "'")


def _safe_url(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)
