"""Backup while /track is being driven, restore into a fresh install, and the Stats API answers the
same numbers; restore refuses a non-empty target (unless forced) and a manifest of another format."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker

from datafast.app import create_app
from datafast.db import backup as backups
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_clickhouse, migrate_config_db
from datafast.lib.eventstore import EventStore, create_event_store
from datafast.settings import Settings, load_settings
from tests.conftest import POSTGRES_DSN, _postgres_admin, flushed_valkey
from tests.helpers import CHROME_MAC, wait_for_rows
from tests.integration.accounts.conftest import signup
from tests.integration.analytics.test_api import api_key, bearer
from tests.integration.ingest.test_track import drained

Client = AsyncTestClient[Litestar]
METRICS = "visitors,visits,pageviews,bounce_rate,visit_duration"


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "INGEST_FLUSH_INTERVAL": "0.05", "CLICKHOUSE_DATABASE": f"bk_src_{uuid.uuid4().hex[:8]}"}


@pytest.fixture
async def client(app: Litestar, ingest_worker: Worker[Any] | None) -> AsyncIterator[Client]:
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
def target_env(env: dict[str, str], mode: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A second, empty install: its own data dir, ClickHouse database, PostgreSQL database, Valkey db."""
    target = {
        **env,
        "DATA_DIR": str(tmp_path / "restored"),
        "CLICKHOUSE_DATABASE": f"bk_dst_{uuid.uuid4().hex[:8]}",
    }
    if mode != "scaled":
        yield target
        return
    name = f"datafast_restore_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    for valkey_url in flushed_valkey(1):  # not the source's result cache
        yield {**target, "DATABASE_URL": f"{base}/{name}", "VALKEY_URL": valkey_url}
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def stores(settings: Settings) -> AsyncIterator[tuple[Any, EventStore]]:
    engine = sqlalchemy_config(settings).get_engine()
    store = create_event_store(settings)
    await store.ensure_database()
    try:
        yield engine, store
    finally:
        await store.close()
        await engine.dispose()


async def track(client: Client, site: dict[str, Any], page: str, visitor: str) -> int:
    body = {"website_id": site["id"], "page_url": f"https://{site['domain']}{page}", "visitor_id": visitor}
    response = await client.post("/track", json=body, headers={"user-agent": CHROME_MAC})
    return response.status_code


async def scalar(store: EventStore, sql: str, site: dict[str, Any]) -> int:
    result = await store.query(sql, parameters={"s": site["id"]})
    return int(result.result_rows[0][0])


PAGEVIEWS = "SELECT count() FROM events WHERE website_id = {s:UUID} AND event_type = 'pageview'"
VISITS = "SELECT sum(sign) FROM sessions WHERE website_id = {s:UUID}"


@pytest.mark.parametrize(
    "mode", ["embedded", pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True
)
async def test_a_backup_taken_during_ingestion_restores_the_same_stats(
    client: Client, settings: Settings, target_env: dict[str, str], tmp_path: Path
) -> None:
    owner = await signup(client)
    quiet, busy = await owner.create_site(), await owner.create_site()
    key = await api_key(owner, read_only=True)
    # The quiet site: 12 pageviews of 4 visitors on 3 pages, all stored before the backup starts.
    for n in range(12):
        assert await track(client, quiet, f"/p{n % 3}", f"visitor-{n % 4}") == 202
    await drained(client)

    # The busy site takes pageviews all through the backup.
    sent = 0
    stop = asyncio.Event()

    async def ingest() -> None:
        nonlocal sent
        while not stop.is_set():
            assert await track(client, busy, f"/b{sent % 5}", f"busy-{sent % 7}") == 202
            sent += 1
            await asyncio.sleep(0)

    async with stores(settings) as (engine, store):
        ingestion = asyncio.create_task(ingest())
        await wait_for_rows(store, busy["id"], 5)
        lines: list[str] = []
        manifest = await backups.backup(
            tmp_path / "backup", settings.database_url, engine, store, lines.append
        )
        stop.set()
        await ingestion
        await drained(client)
        assert await scalar(store, PAGEVIEWS, busy) == sent  # the source kept everything
    assert sent > 5
    assert any(line.startswith("clickhouse events") for line in lines), lines
    assert manifest.clickhouse_versions
    assert manifest.config_revision
    assert json.loads((tmp_path / "backup" / "manifest.json").read_text())["format_version"] == 1

    stats_url = "/api/v1/sites/{id}/metrics?period=7d&metrics=" + METRICS
    pages_url = "/api/v1/sites/{id}/breakdown?period=7d&dimension=page"
    source = {}
    for name, site in (("quiet", quiet), ("busy", busy)):
        for kind, url in (("metrics", stats_url), ("pages", pages_url)):
            response = await client.get(url.format(id=site["id"]), headers=bearer(key))
            assert response.status_code == 200, response.text
            source[name, kind] = response.json()
    assert source["quiet", "metrics"]["totals"]["pageviews"] == 12  # independent truth
    assert source["quiet", "metrics"]["totals"]["visitors"] == 4

    restored_settings = load_settings(target_env, env_file=None)
    progress: list[str] = []
    async with stores(restored_settings) as (engine, store):
        await backups.restore(tmp_path / "backup", engine, store, progress.append)
        assert any(line.startswith("clickhouse sessions") for line in progress), progress
        busy_pageviews = await scalar(store, PAGEVIEWS, busy)
        busy_visits = await scalar(store, VISITS, busy)
        # A second restore onto the now non-empty install is refused, unless forced.
        with pytest.raises(backups.BackupError, match="already holds data"):
            await backups.restore(tmp_path / "backup", engine, store, progress.append)
        await backups.restore(tmp_path / "backup", engine, store, progress.append, force=True)
        assert await scalar(store, PAGEVIEWS, busy) == busy_pageviews  # replaced, not doubled
    assert 5 <= busy_pageviews <= sent

    async with AsyncTestClient(create_app(restored_settings)) as restored:
        for name, site in (("quiet", quiet), ("busy", busy)):
            metrics = await restored.get(stats_url.format(id=site["id"]), headers=bearer(key))
            pages = await restored.get(pages_url.format(id=site["id"]), headers=bearer(key))
            assert metrics.status_code == 200, metrics.text
            if name == "quiet":  # identical to the source's answers
                assert metrics.json()["totals"] == source[name, "metrics"]["totals"]
                assert pages.json() == source[name, "pages"]
            else:  # the snapshot adds up: the rebuilt rollups agree with the restored rows
                assert metrics.json()["totals"]["pageviews"] == busy_pageviews
                assert metrics.json()["totals"]["visits"] == busy_visits


async def test_restore_refuses_a_backup_of_another_format(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    async with stores(settings) as (engine, store):
        with pytest.raises(backups.BackupError, match="datafast migrate"):
            await backups.backup(folder, settings.database_url, engine, store, lambda _: None)
        await migrate_config_db(engine)
        await migrate_clickhouse(store)
        await backups.backup(folder, settings.database_url, engine, store, lambda _: None)
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
        with pytest.raises(backups.BackupError, match="backup format 99"):
            await backups.restore(folder, engine, store, lambda _: None)
        (folder / "manifest.json").unlink()
        with pytest.raises(backups.BackupError, match="not a DataFast backup"):
            await backups.restore(folder, engine, store, lambda _: None)
