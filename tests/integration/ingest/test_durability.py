"""kill -9 under load: every event acknowledged with 202 is stored exactly once after a restart."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import clickhouse_connect
import httpx

from tests.conftest import free_port
from tests.helpers import CHROME_MAC, metric
from tests.integration.test_cli import Server, _env, run


def _create_site(env: dict[str, str], cwd: Path) -> str:
    assert (
        run(
            "user", "create", "--email", "o@example.com", "--password", "password1", env=env, cwd=cwd
        ).returncode
        == 0
    )
    created = run("site", "create", "--domain", "shop.example", "--owner", "o@example.com", env=env, cwd=cwd)
    assert created.returncode == 0, created.stderr
    match = re.search(r"\(([0-9a-f-]{36})\)", created.stdout)
    assert match is not None
    return match[1]


async def _load(url: str, site_id: str, acknowledged: list[str], stop: asyncio.Event) -> None:
    """Send events until the server dies; remember the client id of each one answered 202."""
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            client_id = uuid.uuid4().hex
            body = {"website_id": site_id, "page_url": "https://shop.example/", "event_id": client_id}
            try:
                response = await client.post(url + "/track", json=body, headers={"user-agent": CHROME_MAC})
            except httpx.TransportError:
                return
            if response.status_code == 202:
                acknowledged.append(response.json()["id"])


def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # The writer is told to wait a long time, so most events sit only in the spool at the kill.
    env = _env(DATA_DIR=str(tmp_path / "data"), INGEST_FLUSH_INTERVAL="3600", INGEST_BATCH_ROWS="1000000")
    site_id = _create_site(env, tmp_path)
    server = Server(env, tmp_path, free_port())
    try:
        server.wait_ready()
        acknowledged: list[str] = []

        async def drive() -> None:
            stop = asyncio.Event()
            workers = [asyncio.create_task(_load(server.url, site_id, acknowledged, stop)) for _ in range(16)]
            while len(acknowledged) < 300:  # noqa: ASYNC110 - polls a list the load tasks fill
                await asyncio.sleep(0.01)
            server.crash()  # mid-load: requests are in flight
            stop.set()
            await asyncio.gather(*workers)

        asyncio.run(drive())
        server.process.wait(timeout=30)
    finally:
        server.kill()
    assert len(acknowledged) >= 300

    # Restart with the normal writer: the spool is replayed into ClickHouse.
    restarted = Server(
        {**env, "INGEST_FLUSH_INTERVAL": "0.1", "INGEST_BATCH_ROWS": "1000"}, tmp_path, free_port()
    )
    try:
        restarted.wait_ready()
        deadline = time.monotonic() + 60
        while metric(httpx.get(restarted.url + "/metrics").text, "datafast_spool_depth") != 0:
            assert time.monotonic() < deadline, "the replayed spool did not drain"
            time.sleep(0.1)
        assert restarted.stop() == 0
    finally:
        restarted.kill()

    client = clickhouse_connect.get_client(
        dsn=f"chdb://{tmp_path / 'data' / 'clickhouse'}", database="datafast"
    )
    try:
        result = client.query(
            "SELECT event_id, count() FROM events WHERE website_id = {s:UUID} GROUP BY event_id",
            parameters={"s": site_id},
        )
        stored = {str(r[0]).replace("-", ""): r[1] for r in result.result_rows}
        # One browser, one visit: its session rows (recovered after the restart) count every event.
        visits, session_events = client.query(
            "SELECT sum(sign), sum(sign * events) FROM sessions WHERE website_id = {s:UUID}",
            parameters={"s": site_id},
        ).result_rows[0]
    finally:
        client.close()
    assert all(count == 1 for count in stored.values()), "an event was stored twice"
    missing = {a.removeprefix("evt_") for a in acknowledged} - set(stored)
    assert not missing, f"{len(missing)} acknowledged events were lost"
    assert (visits, session_events) == (1, len(stored))
