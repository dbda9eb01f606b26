"""The config database connection, shared by the app (through the plugin) and the CLI."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from datafast.settings import Settings

__all__ = ("sqlalchemy_config",)


def sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    engine_config = EngineConfig(pool_pre_ping=not settings.uses_sqlite)
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit_include_redirects",  # OAuth callbacks sign in with a 302
        create_all=False,
    )
    if settings.uses_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _enable_sqlite_wal(config.get_engine())
    return config


def _enable_sqlite_wal(engine: AsyncEngine) -> None:
    """WAL lets readers run while a write commits; foreign keys are off in SQLite by default."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
