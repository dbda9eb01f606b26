"""Alembic environment for the config database (SQLite or PostgreSQL).

DataFast runs migrations itself (``datafast migrate`` / ``datafast serve``) and hands
Alembic an open connection in ``config.attributes["connection"]``. Run by the ``alembic``
command instead (e.g. to autogenerate a revision), it connects with DATABASE_URL.
"""

import asyncio

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from datafast.db.models import metadata
from datafast.settings import load_settings

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        user_module_prefix="advanced_alchemy.types.",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(load_settings().database_url)
    async with engine.begin() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    asyncio.run(run_online())
