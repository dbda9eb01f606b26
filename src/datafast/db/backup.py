"""``datafast backup DIR`` / ``datafast restore DIR``: the config database and ClickHouse in one folder.

What a backup folder holds::

    manifest.json     format version, DataFast version, both schema revisions, row counts, times
    config.sqlite3    the config database (SQLite's online backup API in embedded mode; in scaled
                      mode every table of PostgreSQL copied row by row through SQLAlchemy)
    clickhouse/<table>.native   each ClickHouse table DataFast writes, in ClickHouse's Native format

ClickHouse: the rows of every table that is not fed by a materialized view (events, sessions,
payments, exchange rates, …) are read with ``SELECT … FORMAT Native`` and written back with
``INSERT … FORMAT Native``; the rollups are rebuilt by their materialized views as the rows go
in (``local_day_offsets``, which the local-day views join with, goes in first), so they agree
with the raw tables by construction. This one path works on chDB and on a
ClickHouse server alike (``BACKUP … TO File/Disk`` needs a backup disk in the server's own
configuration, which neither chDB nor a managed server lets us assume). A cluster
(``CLICKHOUSE_CLUSTER``) is not supported here: use ``BACKUP DATABASE … ON CLUSTER`` there.

Consistency while ingestion runs: the config database is copied first (one transaction), then
ClickHouse table by table, raw tables before the tables that refer to them. Each table is one
``SELECT``, so each is a point-in-time read; an event accepted while the backup runs is in the
backup or not, never half of it. Because the config database is copied first, every site, goal
and key a ClickHouse row refers to is in the backup. A visit whose events arrive while the backup
runs may lack its last events, exactly as it would have at that moment on the dashboard.

Restore refuses a target that already holds data (unless ``force``), refuses a manifest of another
format version or of newer schema revisions than this installation, migrates the target to the
head revision first and then loads the rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from datafast import __version__
from datafast.db.clickhouse import MIGRATIONS_TABLE
from datafast.db.migrate import load_clickhouse_migrations, migrate_clickhouse, migrate_config_db
from datafast.db.models import metadata
from datafast.lib.eventstore import EventStore

__all__ = ("FORMAT_VERSION", "BackupError", "Manifest", "backup", "restore")

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG_FILE = "config.sqlite3"
CLICKHOUSE_DIR = "clickhouse"
# Table names in SQL below come from system.tables and the validated CLICKHOUSE_DATABASE setting.
_MV_TARGET = re.compile(r"\bTO\s+`?(\w+)`?\.`?(\w+)`?", re.I)
JOINED_FIRST = ("local_day_offsets",)
"""Tables a materialized view joins with (migration 0009): restored before the rows whose views
read them, or those views would write nothing for the rows restored earlier."""

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Manifest:
    format_version: int
    datafast_version: str
    started_at: str
    finished_at: str
    config_backend: str
    config_revision: str | None
    clickhouse_versions: list[int]
    config_rows: dict[str, int]
    clickhouse_rows: dict[str, int]
    clickhouse_sha256: dict[str, str]

    def write(self, folder: Path) -> None:
        data = {field: getattr(self, field) for field in self.__slots__}
        (folder / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.is_file():
            raise BackupError(f"{path} is missing: {folder} is not a DataFast backup")
        data = json.loads(path.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"backup format {data.get('format_version')!r} is not {FORMAT_VERSION}, the format "
                f"this DataFast ({__version__}) reads"
            )
        return cls(**{field: data[field] for field in cls.__slots__})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- config database ------------------------------------------------------------------------


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _sqlite_file(database_url: str) -> Path:
    return Path(sa.make_url(database_url).database or "")


async def _backup_config(
    database_url: str, engine: AsyncEngine, folder: Path
) -> tuple[str | None, dict[str, int]]:
    target_path = folder / CONFIG_FILE
    target_path.unlink(missing_ok=True)
    async with engine.connect() as connection:
        revision = await connection.run_sync(_revision)
    if revision is None:
        raise BackupError("the config database has no tables yet: run `datafast migrate` first")
    if database_url.startswith("sqlite"):
        # SQLite's online backup: a consistent copy while the server keeps writing (WAL mode).
        await asyncio.to_thread(_sqlite_online_backup, _sqlite_file(database_url), target_path)
        return revision, await asyncio.to_thread(_count_sqlite, target_path)
    target_engine = sa.create_engine(f"sqlite:///{target_path}")
    try:
        metadata.create_all(target_engine)
        with target_engine.begin() as copy:
            async with engine.connect() as connection:
                # One REPEATABLE READ transaction: all tables as of one moment.
                await connection.execution_options(isolation_level="REPEATABLE READ")
                async with connection.begin():
                    rows = await connection.run_sync(
                        lambda source: [
                            (table, [dict(row) for row in source.execute(sa.select(table)).mappings()])
                            for table in metadata.sorted_tables
                        ]
                    )
            counts = {}
            for table, table_rows in rows:
                if table_rows:
                    copy.execute(sa.insert(table), table_rows)
                counts[table.name] = len(table_rows)
    finally:
        target_engine.dispose()
    return revision, counts


def _sqlite_online_backup(source_path: Path, target_path: Path) -> None:
    source, target = sqlite3.connect(source_path), sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _count_sqlite(path: Path) -> dict[str, int]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return {
                table.name: int(connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


async def _config_has_rows(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if await connection.scalar(sa.select(sa.literal(1)).select_from(table).limit(1)):
                return True
    return False


async def _restore_config(engine: AsyncEngine, folder: Path) -> dict[str, int]:
    source_engine = create_async_engine(f"sqlite+aiosqlite:///{folder / CONFIG_FILE}")
    try:
        async with source_engine.connect() as source:
            rows = await source.run_sync(
                lambda connection: [
                    (table, [dict(row) for row in connection.execute(sa.select(table)).mappings()])
                    for table in metadata.sorted_tables
                ]
            )
    finally:
        await source_engine.dispose()
    counts: dict[str, int] = {}
    async with engine.begin() as target:
        for table in reversed(metadata.sorted_tables):  # --force: children before parents
            await target.execute(sa.delete(table))
        for table, table_rows in rows:
            if table_rows:
                await target.execute(sa.insert(table), table_rows)
            counts[table.name] = len(table_rows)
    return counts


# --- ClickHouse -----------------------------------------------------------------------------


async def _data_tables(store: EventStore) -> list[str]:
    """The tables holding rows of their own: not views, not tables a materialized view fills."""
    result = await store.query(
        "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": store.database},
        limited=False,
    )
    fed = {
        match.group(2)
        for name, engine, ddl in result.result_rows
        if engine == "MaterializedView" and (match := _MV_TARGET.search(ddl))
    }
    return sorted(
        name
        for name, engine, _ in result.result_rows
        if engine.endswith("MergeTree") and name not in fed and name != MIGRATIONS_TABLE.name
    )


async def _stored_columns(store: EventStore, table: str) -> list[str]:
    """The columns ``SELECT *`` returns (and a Native block of it holds), in order."""
    result = await store.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS', 'EPHEMERAL') ORDER BY position",
        parameters={"db": store.database, "t": table},
        limited=False,
    )
    return [str(row[0]) for row in result.result_rows]


async def _migrated(store: EventStore) -> bool:
    result = await store.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": store.database, "t": MIGRATIONS_TABLE.name},
        limited=False,
    )
    return bool(result.result_rows[0][0])


async def _count(store: EventStore, table: str) -> int:
    result = await store.query(f"SELECT count() FROM {store.database}.{table}", limited=False)  # noqa: S608
    return int(result.result_rows[0][0])


async def _applied_versions(store: EventStore) -> list[int]:
    result = await store.query(
        f"SELECT DISTINCT version FROM {store.database}.{MIGRATIONS_TABLE.name} ORDER BY version",  # noqa: S608
        limited=False,
    )
    return [int(row[0]) for row in result.result_rows]


# --- the two commands -----------------------------------------------------------------------


def _prepare(folder: Path) -> Path:
    """Create ``folder``; drop a previous backup's manifest and tables (no manifest until whole)."""
    out = folder / CLICKHOUSE_DIR
    out.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    for stale in out.glob("*.native"):
        stale.unlink()
    return out


async def backup(
    folder: Path, database_url: str, engine: AsyncEngine, store: EventStore, progress: Progress
) -> Manifest:
    """Write a backup of both stores into ``folder`` (created; an existing backup is replaced)."""
    started = _now()
    if not await _migrated(store):
        raise BackupError(
            f"ClickHouse database {store.database} has no tables yet: run `datafast migrate` first"
        )
    out = await asyncio.to_thread(_prepare, folder)
    progress("config database …")
    revision, config_rows = await _backup_config(database_url, engine, folder)
    progress(f"config database: {sum(config_rows.values())} rows (revision {revision})")
    versions = await _applied_versions(store)
    clickhouse_rows: dict[str, int] = {}
    digests: dict[str, str] = {}
    for table in await _data_tables(store):
        sql = f"SELECT * FROM {store.database}.{table}"  # noqa: S608
        data: bytes = await store.raw_query(sql)
        await asyncio.to_thread((out / f"{table}.native").write_bytes, data)
        digests[table] = hashlib.sha256(data).hexdigest()
        # Informational: rows may arrive (or merge away) between the export and this count.
        clickhouse_rows[table] = await _count(store, table)
        progress(f"clickhouse {table}: {len(data)} bytes, about {clickhouse_rows[table]} rows")
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        datafast_version=__version__,
        started_at=started,
        finished_at=_now(),
        config_backend="sqlite" if database_url.startswith("sqlite") else "postgresql",
        config_revision=revision,
        clickhouse_versions=versions,
        config_rows=config_rows,
        clickhouse_rows=clickhouse_rows,
        clickhouse_sha256=digests,
    )
    manifest.write(folder)
    progress(f"backup written to {folder}")
    return manifest


async def restore(
    folder: Path, engine: AsyncEngine, store: EventStore, progress: Progress, *, force: bool = False
) -> Manifest:
    """Load a backup written by :func:`backup` into this installation."""
    manifest = Manifest.read(folder)
    known = [migration.version for migration in load_clickhouse_migrations()]
    unknown = sorted(set(manifest.clickhouse_versions) - set(known))
    if unknown:
        raise BackupError(
            f"the backup has ClickHouse migrations {unknown} this DataFast ({__version__}) does not know: "
            f"restore with DataFast {manifest.datafast_version} or newer"
        )
    progress("migrating the target …")
    await migrate_config_db(engine)
    await migrate_clickhouse(store)
    tables = await _data_tables(store)
    if not force:
        busy = [table for table in tables if await _count(store, table)]
        if busy or await _config_has_rows(engine):
            raise BackupError(
                "the target already holds data"
                + (f" (ClickHouse: {', '.join(busy)})" if busy else " (config database)")
                + ": restore into an empty install, or pass --force to replace it"
            )
    progress("config database …")
    counts = await _restore_config(engine, folder)
    progress(f"config database: {sum(counts.values())} rows")
    if force:  # the rollups are emptied too: the inserts below rebuild them
        result = await store.query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
            parameters={"db": store.database},
            limited=False,
        )
        for (name,) in result.result_rows:
            if name != MIGRATIONS_TABLE.name:
                await store.command(f"TRUNCATE TABLE {store.database}.{name}")
    ordered = sorted(manifest.clickhouse_sha256.items(), key=lambda item: item[0] not in JOINED_FIRST)
    for table, digest in ordered:
        if table not in tables:
            raise BackupError(f"the backup holds ClickHouse table {table!r}, which this DataFast lacks")
        path = folder / CLICKHOUSE_DIR / f"{table}.native"
        data = path.read_bytes() if path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != digest:
            raise BackupError(f"{path} is missing or damaged (its SHA-256 differs from the manifest's)")
        if data:
            await store.insert_raw(table, await _stored_columns(store, table), data, "Native")
        progress(f"clickhouse {table}: {await _count(store, table)} rows")
    progress(f"restored the backup of {manifest.finished_at} (DataFast {manifest.datafast_version})")
    return manifest
