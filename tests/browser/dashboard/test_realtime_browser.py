"""The live feed in scaled mode survives a lost Valkey pub/sub connection.

A real ``datafast serve`` process in scaled mode (PostgreSQL + Valkey + ClickHouse over HTTP) and a
``datafast worker`` processing what it captures feed the dashboard's live panel in Chromium and a
plain SSE client. The test
kills the server's pub/sub connection in Valkey (``CLIENT KILL``, only the pub/sub clients of the
test database, so other suites sharing the server keep theirs), waits until the server has
subscribed again, and a new visit still reaches both.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import valkey
from playwright.sync_api import Browser, expect

from tests.browser.dashboard.conftest import DESKTOP, PASSWORD, Errors
from tests.conftest import REDIS_DB, free_port
from tests.helpers import CHROME_MAC
from tests.integration.realtime.sse import EventStream
from tests.integration.test_cli import DATAFAST, Server, _env

pytestmark = [pytest.mark.browser, pytest.mark.scaled]


@pytest.fixture
def scaled(tmp_path: Path, postgres_url: str, valkey_url: str, clickhouse_url: str) -> Iterator[Server]:
    data = tmp_path / "web"
    data.mkdir()
    port = free_port()
    env = _env(
        DATA_DIR=str(data),
        CLICKHOUSE_URL=clickhouse_url,
        CLICKHOUSE_DATABASE=f"live_{uuid.uuid4().hex[:8]}",
        DATABASE_URL=postgres_url,
        VALKEY_URL=valkey_url,
        SECRET_KEY="r" * 40,
        MIGRATE_ON_START="true",
        BASE_URL=f"http://127.0.0.1:{port}",
        REALTIME_HEARTBEAT="1",
        LOG_LEVEL="WARNING",
    )
    server = Server(env, data, port)
    worker = None
    try:
        server.wait_ready()
        # Scaled web processes only capture: a worker processes and publishes what they take.
        worker = subprocess.Popen([*DATAFAST, "worker"], env=env, cwd=data, start_new_session=True)
        yield server
    finally:
        server.kill()
        if worker is not None:
            worker.kill()
            worker.wait(timeout=30)


def pubsub_clients(admin: valkey.Valkey) -> set[str]:
    """Ids of the pub/sub connections to the test database (what the server's hub holds)."""
    return {c["id"] for c in admin.client_list(_type="pubsub") if c.get("db") == str(REDIS_DB)}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.05)


def test_the_live_feed_keeps_working_after_the_pubsub_connection_is_killed(
    browser: Browser, scaled: Server, valkey_url: str, errors: Errors
) -> None:
    domain = f"live{uuid.uuid4().hex[:8]}.test"
    http = httpx.Client(base_url=scaled.url, timeout=15)
    admin = valkey.Valkey.from_url(valkey_url, decode_responses=True)
    context = browser.new_context(user_agent=CHROME_MAC, viewport=DESKTOP)
    stream: EventStream | None = None
    try:
        signed = http.post(
            "/api/v1/auth/signup",
            json={"email": f"live-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
        )
        assert signed.status_code == 201, signed.text
        made = http.post(
            "/api/v1/sites", json={"domain": domain}, headers={"x-csrf-token": http.cookies["datafast_csrf"]}
        )
        assert made.status_code == 201, made.text
        site_id = made.json()["id"]

        def visit(path: str) -> str:
            answer = httpx.post(
                scaled.url + "/track",
                json={
                    "website_id": site_id,
                    "page_url": f"https://{domain}{path}",
                    "event_id": uuid.uuid4().hex,
                },
                headers={"user-agent": CHROME_MAC},
                timeout=15,
            )
            assert answer.status_code == 202, answer.text
            return str(uuid.UUID(hex=answer.json()["id"].removeprefix("evt_")))

        context.add_cookies(
            [{"name": c.name, "value": c.value or "", "url": scaled.url} for c in http.cookies.jar]
        )
        page = errors.watch(context.new_page())
        page.goto(f"{scaled.url}/sites/{site_id}")
        live = page.get_by_test_id("live")
        expect(live.locator(".dot:not(.off)")).to_have_count(1, timeout=10_000)  # connected
        stream = EventStream(f"{scaled.url}/api/v1/sites/{site_id}/realtime", cookies=http.cookies)
        assert stream.next().comments == ["subscribed"]

        before = visit("/before")
        expect(live.get_by_test_id("live-item").filter(has_text="Viewed /before")).to_have_count(
            1, timeout=5_000
        )
        assert stream.next_event().id == before

        # --- the pub/sub connection dies (as when Valkey restarts or a proxy drops it)
        killed = pubsub_clients(admin)
        assert killed, "the server holds no pub/sub connection to the test database"
        for client_id in killed:
            admin.execute_command("CLIENT KILL ID", client_id)
        wait_until(lambda: not (pubsub_clients(admin) & killed), "the killed connections are gone")
        # The hub subscribes again by itself (the browser's and the SSE client's streams stay open).
        wait_until(lambda: bool(pubsub_clients(admin) - killed), "the server subscribed again")
        wait_until(
            lambda: admin.pubsub_numsub(f"datafast:pubsub:site:{site_id}")[0][1] == 1,
            "the site's channel has its subscriber back",
        )

        after = visit("/after")
        expect(live.get_by_test_id("live-item").filter(has_text="Viewed /after")).to_have_count(
            1, timeout=5_000
        )
        assert stream.next_event().id == after
        expect(live.locator(".dot:not(.off)")).to_have_count(1)
    finally:
        if stream is not None:
            stream.close()
        context.close()
        admin.close()
        http.close()
