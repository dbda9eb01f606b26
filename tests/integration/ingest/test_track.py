"""POST /track on both modes: validation, site checks, enrichment, de-duplication, storage."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import User, Website
from datafast.domain.accounts.services import UserService
from datafast.domain.sites.services import WebsiteService
from datafast.lib.adapters import Adapters
from tests.conftest import METRICS_AUTH, SettingsFactory
from tests.helpers import CHROME_MAC, GOOGLEBOT, metric

Client = AsyncTestClient[Litestar]


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "INGEST_FLUSH_INTERVAL": "0.05"}


@pytest.fixture
async def site(db_session: AsyncSession) -> Website:
    owner: User = await UserService(session=db_session).create_user(
        f"o{uuid.uuid4().hex[:8]}@example.com", "password1"
    )
    website = await WebsiteService(session=db_session).create_site(
        owner, f"{uuid.uuid4().hex[:8]}.example.com"
    )
    website.hostnames = ["partner-shop.io"]
    await db_session.commit()
    return website


@pytest.fixture
async def client(app: Litestar, site: Website, ingest_worker: Worker[Any] | None) -> AsyncIterator[Client]:
    """The app's test client; in scaled mode a worker's drain jobs run beside it."""
    async with AsyncTestClient(app) as client:
        yield client


def event(site: Website, **fields: Any) -> dict[str, Any]:
    return {"website_id": str(site.id), "page_url": f"https://{site.domain}/pricing", **fields}


async def post(client: Client, body: Any, *, ua: str = CHROME_MAC, **kwargs: Any) -> Any:
    return await client.post(
        "/track", json=body, headers={"user-agent": ua, **kwargs.pop("headers", {})}, **kwargs
    )


async def drained(client: Client, timeout: float = 20) -> None:
    """Wait until the writer has put every spooled event into ClickHouse."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (await client.get("/metrics", headers=METRICS_AUTH)).text
        if metric(text, "datafast_spool_depth") == 0:
            return
        await asyncio.sleep(0.01)  # the test client blocks this loop: let the worker (scaled mode) run
    raise AssertionError("the spool did not drain")


async def stored(client: Client, app: Litestar, site: Website) -> list[dict[str, Any]]:
    await drained(client)
    adapters: Adapters = app.state.adapters
    result = await adapters.event_store.query(
        "SELECT * FROM events WHERE website_id = {site:UUID} ORDER BY timestamp, event_name",
        parameters={"site": str(site.id)},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


async def test_pageview_is_accepted_enriched_and_stored(client: Client, app: Litestar, site: Website) -> None:
    before = time.time()
    response = await post(
        client,
        event(
            site,
            page_url=f"https://www.{site.domain}/pricing?utm_source=newsletter&utm_medium=email",
            referrer="https://www.google.com/",
            props={"plan": "pro", "seats": 3, "trial": True},
        ),
    )

    assert response.status_code == 202, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    event_id = response.json()["id"]
    assert re.fullmatch(r"evt_[0-9a-f]{32}", event_id)
    (row,) = await stored(client, app, site)
    assert str(row["event_id"]).replace("-", "") == event_id.removeprefix("evt_")
    assert row["event_type"] == "pageview"
    assert row["hostname"] == f"www.{site.domain}"
    assert row["pathname"] == "/pricing"
    assert (row["utm_source"], row["utm_medium"]) == ("newsletter", "email")
    assert row["channel"] == "email"
    assert row["browser"] == "Chrome"
    assert row["os"] == "macOS"
    assert row["device"] == "desktop"
    assert row["props"] == {"plan": "pro", "seats": "3", "trial": "true"}
    assert row["visitor_id"]
    assert row["session_id"]
    assert before - 1 <= row["timestamp"].replace(tzinfo=None).timestamp() - _utc_offset() <= time.time() + 1


def _utc_offset() -> float:
    return 0.0


async def test_batch_envelope_and_text_plain(client: Client, app: Litestar, site: Website) -> None:
    now_ms = time.time() * 1000
    body = {
        "sent_at": now_ms + 3_600_000,  # the client's clock runs an hour ahead
        "events": [
            event(site, event_id="a1", timestamp=now_ms + 3_600_000 - 60_000),
            event(
                site,
                event_type="goal",
                goal_name="signup",
                event_id="a2",
                timestamp=now_ms + 3_600_000 - 1000,
            ),
            event(
                site, event_type="purchase", goal_name="order", revenue=49.99, currency="eur", event_id="a3"
            ),
        ],
    }
    import msgspec

    response = await client.post(
        "/track",
        content=msgspec.json.encode(body),
        headers={"content-type": "text/plain", "user-agent": CHROME_MAC},
    )

    assert response.status_code == 202, response.text
    assert len(response.json()["ids"]) == 3
    rows = await stored(client, app, site)
    assert [r["event_type"] for r in rows] == ["pageview", "goal", "purchase"]
    # The skew is cancelled: the first event happened a minute before the send, in server time.
    delay = rows[1]["timestamp"].timestamp() - rows[0]["timestamp"].timestamp()
    assert 58 <= delay <= 60
    assert rows[1]["goal_name"] == "signup"
    assert (rows[2]["revenue"], rows[2]["currency"]) == (4999, "EUR")


async def test_retried_send_is_stored_once(client: Client, app: Litestar, site: Website) -> None:
    first = await post(client, event(site, event_id="retry-me"))
    second = await post(client, event(site, event_id="retry-me"))
    other = await post(client, event(site, event_id="another"))

    assert first.status_code == second.status_code == other.status_code == 202
    assert first.json()["id"] == second.json()["id"] != other.json()["id"]
    assert len(await stored(client, app, site)) == 2
    # Rows are visible in ClickHouse a moment before the writer commits the spool and counts
    # the batch: wait for the count.
    deadline = time.monotonic() + 10
    while _rows_written(metrics := (await client.get("/metrics", headers=METRICS_AUTH)).text) != 2:
        assert time.monotonic() < deadline, metrics
        await asyncio.sleep(0.02)
    # Captured: all three; the retry is recognised when processed (embedded: in this process).
    assert metric(metrics, "datafast_events_accepted_total") == 3
    if app.state.adapters.valkey is None:
        assert metric(metrics, "datafast_events_duplicate_total") == 1


def _rows_written(metrics: str) -> float | None:
    """Embedded: this process's writer; scaled: the workers (their counts are kept in Valkey)."""
    written = metric(metrics, "datafast_insert_rows_total")
    return written or metric(metrics, "datafast_worker_insert_rows_total")


async def test_same_id_twice_in_one_batch_is_stored_once(
    client: Client, app: Litestar, site: Website
) -> None:
    response = await post(client, [event(site, event_id="twin"), event(site, event_id="twin")])

    assert response.status_code == 202
    first, second = response.json()["ids"]
    assert first == second
    assert len(await stored(client, app, site)) == 1


async def test_bots_are_dropped_and_counted(client: Client, app: Litestar, site: Website) -> None:
    response = await post(client, event(site), ua=GOOGLEBOT)

    assert response.status_code == 202
    assert response.json() == {"id": None, "dropped": {"bot": 1}}
    assert await stored(client, app, site) == []
    text = (await client.get("/metrics", headers=METRICS_AUTH)).text
    assert metric(text, "datafast_events_dropped_total", reason="bot") == 1


async def test_too_old_and_future_events_are_dropped(client: Client, app: Litestar, site: Website) -> None:
    now_ms = time.time() * 1000
    body = {
        "sent_at": now_ms,
        "events": [
            event(site, timestamp=now_ms - 73 * 3600 * 1000),
            event(site, timestamp=now_ms + 600_000),
            event(site, timestamp=now_ms - 71 * 3600 * 1000),
        ],
    }
    response = await post(client, body)

    assert response.status_code == 202
    assert response.json()["dropped"] == {"too_old": 1, "future": 1}
    assert len(response.json()["ids"]) == 1
    (row,) = await stored(client, app, site)
    assert abs(row["timestamp"].timestamp() - (time.time() - 71 * 3600)) < 120


async def test_unknown_site_is_404(client: Client) -> None:
    for website_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = await post(client, {"website_id": website_id, "page_url": "https://x.com/"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert website_id in response.json()["detail"]


async def test_hostnames_must_belong_to_the_site(client: Client, app: Litestar, site: Website) -> None:
    ok = [f"https://{site.domain}/", f"https://blog.{site.domain}/a", "https://partner-shop.io/checkout"]
    for url in ok:
        assert (await post(client, event(site, page_url=url))).status_code == 202, url

    response = await post(client, event(site, page_url=f"https://evil-{site.domain}/"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["key"] == "page_url"
    assert len(await stored(client, app, site)) == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"website_id": None}, "website_id"),
        ({"page_url": ""}, "page_url"),
        ({"page_url": "x" * 2049}, "page_url"),
        ({"referrer": "r" * 2049}, "referrer"),
        ({"utm_source": "s" * 101}, "utm_source"),
        ({"utm_medium": 5}, "utm_medium"),
        ({"utm_campaign": "c" * 201}, "utm_campaign"),
        ({"utm_term": "t" * 201}, "utm_term"),
        ({"utm_content": "c" * 201}, "utm_content"),
        ({"event_type": "bad type!"}, "event_type"),
        ({"event_id": "i" * 65}, "event_id"),
        ({"visitor_id": ""}, "visitor_id"),
        ({"session_id": ["x"]}, "session_id"),
        ({"timestamp": -1}, "timestamp"),
        ({"goal_name": "g" * 101}, "goal_name"),
        ({"revenue": -5}, "revenue"),
        ({"currency": "dollars"}, "currency"),
        ({"props": {f"k{i}": "v" for i in range(11)}}, "props"),
        ({"props": {"k": "v" * 256}}, "props"),
        ({"props": {"k": {"nested": 1}}}, "props"),
    ],
)
async def test_each_bad_field_is_named(
    client: Client, site: Website, change: dict[str, Any], key: str
) -> None:
    body = event(site, **change)
    if change.get("website_id", "") is None:
        del body["website_id"]

    response = await post(client, body)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["key"] for e in response.json()["errors"]] == [key]


async def test_every_bad_field_of_a_batch_is_named(client: Client, site: Website) -> None:
    response = await post(client, [event(site), event(site, utm_source=1, revenue="x"), {"page_url": "u"}])

    assert response.status_code == 400
    keys = sorted(e["key"] for e in response.json()["errors"])
    assert keys == ["[1].revenue", "[1].utm_source", "[2].website_id"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"42", "application/json", 400),
        (b"[]", "application/json", 400),
        (b"{}", "text/plain", 400),
        (b"<xml/>", "application/xml", 415),
        (b"[" + b'{"a":1},' * 12000 + b"{}]", "application/json", 413),
    ],
)
async def test_malformed_bodies_are_4xx(
    client: Client, content: bytes, content_type: str, status: int
) -> None:
    response = await client.post("/track", content=content, headers={"content-type": content_type})

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "raw",
    [
        b'"page_url": "https://{domain}/\xff"',  # invalid UTF-8 in a string
        b'"page_url": "https://{domain}/", "referrer": "\xc3\x28"',
        b'"page_url": 5, "referrer": "\xfe"',  # a type error before the bad bytes
        b'"page_url": "http://[x/"',  # urlsplit's "Invalid IPv6 URL"
        b'"page_url": "https://{domain}/", "props": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000,
    ],
)
async def test_bodies_that_used_to_answer_500_are_a_400_and_store_nothing(
    client: Client, app: Litestar, site: Website, raw: bytes
) -> None:
    body = (
        b'{"website_id": "%s", ' % str(site.id).encode()
        + raw.replace(b"{domain}", site.domain.encode())
        + b"}"
    )

    response = await client.post("/track", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]
    assert await stored(client, app, site) == []


async def test_deeply_nested_arrays_are_a_400(client: Client) -> None:
    response = await client.post("/track", content=b"[" * 30000 + b"]" * 30000)

    assert response.status_code == 400, response.text


async def test_batch_over_100_events_is_refused(client: Client, site: Website) -> None:
    response = await post(client, [event(site, event_id=str(i)) for i in range(101)])

    assert response.status_code == 400


async def test_cors_preflight_and_wrong_method(client: Client) -> None:
    preflight = await client.options(
        "/track", headers={"origin": "https://anywhere.example", "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert (await client.get("/track")).status_code == 405


async def test_cookieless_visitor_is_stable_and_sessions_follow_the_tracker(
    client: Client, app: Litestar, site: Website, make_settings: SettingsFactory
) -> None:
    await post(client, event(site, event_id="c1"))
    await post(client, event(site, event_id="c2"))
    await post(client, event(site, event_id="c3", visitor_id="cookie-visitor", session_id="cookie-session"))

    rows = await stored(client, app, site)
    assert rows[0]["visitor_id"] == rows[1]["visitor_id"] != "cookie-visitor"
    assert rows[0]["session_id"] == rows[1]["session_id"]
    assert (rows[2]["visitor_id"], rows[2]["session_id"]) == ("cookie-visitor", "cookie-session")


async def test_identify_stores_a_hash_of_the_email_never_the_address(
    client: Client, app: Litestar, site: Website
) -> None:
    body = event(
        site,
        event_type="identify",
        event_id="identify-1",
        props={"user_id": "user_42", "email": "  Founder@Example.COM ", "name": "Ada"},
    )
    response = await post(client, body)

    assert response.status_code == 202, response.text
    (row,) = await stored(client, app, site)
    assert (row["event_type"], row["event_name"]) == ("identify", "identify")
    assert dict(row["props"]) == {
        "user_id": "user_42",
        "name": "Ada",
        "email_hash": hashlib.sha256(b"founder@example.com").hexdigest(),
    }


async def test_a_hash_route_is_part_of_the_pathname_and_an_anchor_is_not(
    client: Client, app: Litestar, site: Website
) -> None:
    base = f"https://{site.domain}/app"
    for url in (f"{base}#/pricing", f"{base}#!/docs", f"{base}#faq", base):
        assert (await post(client, event(site, page_url=url, event_id=url))).status_code == 202

    rows = await stored(client, app, site)

    assert sorted(r["pathname"] for r in rows) == ["/app", "/app", "/app#!/docs", "/app#/pricing"]
