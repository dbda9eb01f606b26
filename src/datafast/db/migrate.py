"""Migrations for both stores: Alembic for the config database, versioned DDL for ClickHouse.

ClickHouse migrations are the files ``migrations/clickhouse/NNNN_name.py``, each with an
``OPERATIONS`` list (see :mod:`datafast.db.clickhouse`). Applied versions are recorded in the
``datafast_migrations`` table; every statement is idempotent, so a run interrupted half-way
is simply run again.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from datafast.db.clickhouse import MIGRATIONS_TABLE, CreateTable, Operation, Target
from datafast.lib.eventstore import EventStore
from datafast.log import get_logger

__all__ = (
    "ClickHouseMigration",
    "load_clickhouse_migrations",
    "migrate_clickhouse",
    "migrate_config_db",
    "migrations_dir",
    "pending_clickhouse_migrations",
)

log = get_logger(__name__)
_FILENAME = re.compile(r"^(\d{4})_(\w+)\.py$")


def migrations_dir() -> Path:
    """``migrations/`` of a source checkout, or the copy packed into the wheel."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "migrations", package.parent.parent / "migrations"):
        if (candidate / "alembic" / "env.py").is_file():
            return candidate
    raise FileNotFoundError("DataFast's migrations folder is missing from this installation")


# --- config database (Alembic) ------------------------------------------------------------


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir() / "alembic"))
    return config


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_and_head(connection: Connection, config: Config) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    return current, ScriptDirectory.from_config(config).get_current_head()


async def migrate_config_db(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Upgrade the config database to the newest revision; returns (before, after)."""
    config = alembic_config()
    async with engine.begin() as connection:
        before, head = await connection.run_sync(_current_and_head, config)
        if before != head:
            await connection.run_sync(_upgrade, config)
    if before != head:
        log.info("config database migrated", revision_from=before, revision_to=head)
    return before, head


async def config_db_is_current(engine: AsyncEngine) -> bool:
    config = alembic_config()
    async with engine.connect() as connection:
        current, head = await connection.run_sync(_current_and_head, config)
    return current == head


# --- ClickHouse ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClickHouseMigration:
    version: int
    name: str
    operations: tuple[Operation, ...]

    def render(self, target: Target) -> list[str]:
        return [statement for operation in self.operations for statement in operation.render(target)]


def load_clickhouse_migrations(directory: Path | None = None) -> list[ClickHouseMigration]:
    return list(_load(directory or migrations_dir() / "clickhouse"))


@functools.cache
def _load(directory: Path) -> tuple[ClickHouseMigration, ...]:
    migrations: list[ClickHouseMigration] = []
    for path in sorted(directory.glob("*.py")):
        match = _FILENAME.match(path.name)
        if match is None:
            continue
        spec = importlib.util.spec_from_file_location(f"datafast_ch_migration_{match[1]}", path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
            raise ImportError(path)
        module: Any = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        migrations.append(ClickHouseMigration(int(match[1]), match[2], tuple(module.OPERATIONS)))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two ClickHouse migrations share a version in {directory}")
    return tuple(migrations)


# Identifiers in DDL cannot be bound; the database name is validated as an identifier in settings.


async def _applied_versions(store: EventStore) -> set[int]:
    table = f"{store.database}.{MIGRATIONS_TABLE.name}"
    result = await store.query(f"SELECT version FROM {table} FINAL", limited=False)  # noqa: S608
    return {int(row[0]) for row in result.result_rows}


async def pending_clickhouse_migrations(store: EventStore) -> list[int]:
    applied = await _applied_versions(store)
    return [m.version for m in load_clickhouse_migrations() if m.version not in applied]


async def migrate_clickhouse(store: EventStore) -> list[int]:
    """Apply pending ClickHouse migrations in order; returns the versions applied now."""
    target = Target(store.database, store.cluster)
    await store.ensure_database()
    for statement in CreateTable(MIGRATIONS_TABLE).render(target):
        await store.command(statement)
    applied = await _applied_versions(store)
    done: list[int] = []
    for migration in load_clickhouse_migrations():
        if migration.version in applied:
            continue
        for statement in migration.render(target):
            await store.command(statement)
        await store.command(
            f"INSERT INTO {store.database}.{MIGRATIONS_TABLE.name} (version, name) "  # noqa: S608
            "VALUES ({version:UInt32}, {name:String})",
            parameters={"version": migration.version, "name": migration.name},
        )
        log.info("clickhouse migrated", version=migration.version, name=migration.name)
        done.append(migration.version)
    return done
