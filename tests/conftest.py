"""Shared fixtures: settings for each storage mode, and a running app.

Two modes run the same integration tests:
- ``embedded``: SQLite + chDB + in-process cache/rate limit/pub-sub/queue.
- ``scaled``: PostgreSQL + Valkey (Redis here) + a ClickHouse server over HTTP. No ClickHouse
  server package is reachable from this machine, so the server is ``tests/clickhouse_http.py``:
  the ClickHouse HTTP interface executed by chDB in its own process, one for the test session.

chDB allows one data path per process, so every in-process embedded test shares one chDB
directory (database ``datafast_embedded``); scaled tests use database ``datafast_scaled`` on
the HTTP server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.app import create_app
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_clickhouse, migrate_config_db
from datafast.jobs import JOBS
from datafast.lib.adapters import Adapters, create_adapters
from datafast.settings import Settings, load_settings
from tests.clickhouse_http import ClickHouseServer
from tests.helpers import running_worker

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Tests flush these Valkey databases: keep them apart from anything else. Each test uses REDIS_DB;
# tests/integration/test_deployments.py uses the next two. Parallel runs (pytest-xdist, `make test`)
# give each worker its own three.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "7")) + 3 * _WORKER

METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS_AUTH = {"authorization": f"Bearer {METRICS_TOKEN}"}
"""What an in-process test sends to GET /metrics (the test client's peer is not loopback)."""
MODES = ["embedded", pytest.param("scaled", marks=pytest.mark.scaled)]
SettingsFactory = Callable[..., Settings]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), one worker runs every browser test: they share
    one browser and one DataFast server per worker, so spreading them would start two of each."""
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.xdist_group("browser"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a ClickHouse server (HTTP interface) shared by the session's scaled tests."""
    with ClickHouseServer(tmp_path_factory.mktemp("clickhouse-server") / "data") as server:
        yield server.url


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"datafast_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def flushed_valkey(offset: int = 0) -> Iterator[str]:
    """The URL of Valkey database ``REDIS_DB + offset``, empty before and after its user."""
    import valkey

    url = f"{REDIS_URL}/{REDIS_DB + offset}"
    client = valkey.Valkey.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def valkey_url() -> Iterator[str]:
    yield from flushed_valkey()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


@pytest.fixture
def env(mode: str, tmp_path: Path, chdb_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment variables describing one DataFast install in ``mode``."""
    environ = {
        "DATA_DIR": str(tmp_path / "data"),
        "CLICKHOUSE_URL": f"chdb://{chdb_path}",
        "CLICKHOUSE_DATABASE": f"datafast_{mode}",
        "LOG_LEVEL": "WARNING",
        "MIGRATE_ON_START": "true",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    if mode == "scaled":
        environ["CLICKHOUSE_URL"] = request.getfixturevalue("clickhouse_url")
        environ["DATABASE_URL"] = request.getfixturevalue("postgres_url")
        environ["VALKEY_URL"] = request.getfixturevalue("valkey_url")
    return environ


@pytest.fixture
def make_settings(env: dict[str, str]) -> SettingsFactory:
    def make(**overrides: str) -> Settings:
        return load_settings({**env, **overrides}, env_file=None)

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def adapters(settings: Settings) -> AsyncIterator[Adapters]:
    """Adapters made on the test's own event loop (the test client runs the app on another)."""
    adapters = await create_adapters(settings, JOBS)
    await migrate_clickhouse(adapters.event_store)
    yield adapters
    await adapters.close()


@pytest.fixture
async def db_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A config-database session on a migrated database; what a test writes is rolled back."""
    config = sqlalchemy_config(settings)
    engine = config.get_engine()
    await migrate_config_db(engine)
    async with config.get_session() as session:
        yield session
        await session.rollback()
    await engine.dispose()


@pytest.fixture
async def ingest_worker(adapters: Adapters) -> AsyncIterator[Worker[Any] | None]:
    """Scaled mode: a `datafast worker` (its SAQ drain jobs) processing the streams /track appends to."""
    if adapters.valkey is None:
        yield None
        return
    async with running_worker(adapters, interval=0.05) as worker:
        yield worker


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client
