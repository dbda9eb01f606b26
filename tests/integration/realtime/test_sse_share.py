"""The live stream to a share link's viewer: allowed by the link's access token, aggregates only
(no visitor ids, nor anything naming an event's payer), and refused once the link is revoked.

Real ``datafast serve`` processes (the stream is infinite), embedded and scaled (one web process
capturing and one worker processing and publishing, as deployed). The stream re-checks its
credential every ``REALTIME_RECHECK`` seconds (0.3 s here).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deployment import Deployment
from tests.helpers import CHROME_MAC
from tests.integration.realtime.sse import EventStream, Message
from tests.live import Account

RECHECK = 0.3
FIRST_EVENT = 30
"""Seconds to wait for a test's first event: a scaled worker just started may be slow to begin
processing when the machine is busy."""
GERMANY = "85.214.0.1"  # DE in the bundled country table
BRITAIN = "81.2.69.160"  # GB
SHARED_KEYS = {
    "id",
    "type",
    "name",
    "pathname",
    "country",
    "source",
    "device",
    "timestamp",
    "revenue",
    "currency",
    "new_visitor",
}


@pytest.fixture(params=["embedded", pytest.param("scaled", marks=pytest.mark.scaled)])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    extra: dict[str, str] = {}
    if request.param == "scaled":
        extra = {
            "postgres_url": request.getfixturevalue("postgres_url"),
            "valkey_url": request.getfixturevalue("valkey_url"),
            "clickhouse_url": request.getfixturevalue("clickhouse_url"),
        }
    with Deployment(
        tmp_path,
        request.param,
        web=1,
        workers=1,
        REALTIME_HEARTBEAT="0.2",
        REALTIME_RECHECK=str(RECHECK),
        INGEST_FLUSH_INTERVAL="0.1",
        **extra,  # type: ignore[arg-type]
    ) as running:
        yield running


def _session(account: Account) -> dict[str, str]:
    return {"Cookie": f"datafast_session={account.session}", "X-CSRF-Token": account.csrf}


def _share_link(url: str, account: Account) -> dict[str, str]:
    made = httpx.post(
        f"{url}/api/v1/sites/{account.site_id}/share-links",
        json={"name": "board"},
        headers=_session(account),
        timeout=15,
    )
    assert made.status_code == 201, made.text
    link: dict[str, str] = made.json()
    return link


def _share_token(url: str, slug: str) -> str:
    opened = httpx.post(f"{url}/api/v1/share/{slug}/access", json={}, timeout=15)
    assert opened.status_code == 200, opened.text
    token: str = opened.json()["access_token"]
    return token


def _open(url: str, site_id: str, token: str, **headers: str) -> EventStream:
    stream = EventStream(
        f"{url}/api/v1/sites/{site_id}/realtime", headers={"authorization": f"Bearer {token}", **headers}
    )
    assert stream.response.status_code == 200, stream.response.read()
    assert stream.next().comments == ["subscribed"]
    return stream


def _track(url: str, account: Account, path: str, visitor: str, ip: str) -> str:
    answer = httpx.post(
        url + "/track",
        json={
            "website_id": account.site_id,
            "page_url": f"https://{account.domain}{path}?utm_source=newsletter",
            "event_id": uuid.uuid4().hex,
            "visitor_id": visitor,
            "session_id": f"{visitor}-s",
        },
        headers={"user-agent": CHROME_MAC, "x-forwarded-for": ip},
        timeout=15,
    )
    assert answer.status_code == 202, answer.text
    return str(uuid.UUID(hex=answer.json()["id"].removeprefix("evt_")))


def _ends_within(stream: EventStream, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stream.next()
        except AssertionError:  # "the stream ended"
            return True
    return False


def test_a_share_viewer_follows_the_live_feed_as_aggregates_without_visitor_ids(
    deployment: Deployment,
) -> None:
    url = deployment.urls[0]
    account = deployment.account()
    link = _share_link(url, account)
    token = _share_token(url, link["slug"])
    visitor = f"v-{uuid.uuid4().hex[:12]}"
    secret_order = f"order-{uuid.uuid4().hex[:10]}"

    with _open(url, account.site_id, token) as stream:
        first_id = _track(url, account, "/pricing", visitor, GERMANY)
        second_id = _track(url, account, "/signup", visitor, GERMANY)
        other_id = _track(url, account, "/", f"w-{uuid.uuid4().hex[:12]}", BRITAIN)
        messages = [stream.next_event(timeout=FIRST_EVENT) for _ in range(3)]
        # Then the visitor pays (after the visits reached the stream: in scaled mode a worker
        # publishes visits, while the web process announces a payment itself).
        paid = httpx.post(
            f"{url}/api/v1/payments",
            json={
                "website_id": account.site_id,
                "amount": "49.00",
                "currency": "USD",
                "transaction_id": secret_order,
                "visitor_id": visitor,
            },
            headers=account.bearer,
            timeout=15,
        )
        assert paid.status_code == 201, paid.text
        messages.append(stream.next_event(timeout=10))

    events = [m.json() for m in messages]
    for message, event in zip(messages, events, strict=True):
        assert set(event) == SHARED_KEYS, event
        assert message.id == event["id"]
        raw = message.data
        assert visitor not in raw
        assert secret_order not in raw
    # Events are named opaquely: not by their stored ids (a payment's would be its transaction id).
    assert {e["id"] for e in events}.isdisjoint({first_id, second_id, other_id})
    pages = [e for e in events if e["type"] == "pageview"]
    assert [(e["pathname"], e["country"], e["source"]) for e in pages] == [
        ("/pricing", "DE", "newsletter"),
        ("/signup", "DE", "newsletter"),
        ("/", "GB", "newsletter"),
    ]
    # The live count's increments: a visitor is new to the stream once.
    assert [e["new_visitor"] for e in pages] == [True, False, True]
    (payment,) = [e for e in events if e["type"] == "purchase"]
    # Placed where its visitor was seen (the globe's payment marker), never counted as a visitor.
    assert (payment["revenue"], payment["currency"], payment["country"]) == (4900, "USD", "DE")
    assert payment["new_visitor"] is False


def test_a_share_viewer_resumes_with_the_opaque_last_event_id(deployment: Deployment) -> None:
    url = deployment.urls[0]
    account = deployment.account()
    token = _share_token(url, _share_link(url, account)["slug"])
    with _open(url, account.site_id, token) as stream:
        _track(url, account, "/one", "r1", GERMANY)
        seen = stream.next_event(timeout=FIRST_EVENT)
    _track(url, account, "/two", "r2", GERMANY)  # while disconnected
    assert seen.id is not None
    with _open(url, account.site_id, token, **{"last-event-id": seen.id}) as stream:
        replayed = stream.next_event()
    assert replayed.json()["pathname"] == "/two"


def test_the_share_stream_needs_the_links_token_and_ends_when_the_link_is_revoked(
    deployment: Deployment,
) -> None:
    url = deployment.urls[0]
    account = deployment.account()
    other = deployment.account()
    link = _share_link(url, account)
    token = _share_token(url, link["slug"])
    realtime = f"{url}/api/v1/sites/{account.site_id}/realtime"

    assert httpx.get(realtime, timeout=10).status_code == 401
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert httpx.get(realtime, headers={"authorization": f"Bearer {forged}"}, timeout=10).status_code == 401
    # The token opens its own site's stream only.
    elsewhere = httpx.get(
        f"{url}/api/v1/sites/{other.site_id}/realtime",
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert elsewhere.status_code == 404

    with _open(url, account.site_id, token) as stream:
        assert not _ends_within(stream, RECHECK * 4)  # re-checks pass while the link holds
        revoked = httpx.delete(
            f"{url}/api/v1/sites/{account.site_id}/share-links/{link['id']}",
            headers=_session(account),
            timeout=15,
        )
        assert revoked.status_code == 204
        assert _ends_within(stream, 5), "the share stream kept going after the link was revoked"
    # The viewer's reconnect is refused.
    again = httpx.get(realtime, headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("application/problem+json")


def test_a_members_stream_keeps_visitor_ids_and_places_a_payment_where_its_visitor_was(
    deployment: Deployment,
) -> None:
    url = deployment.urls[0]
    account = deployment.account()
    visitor = f"m-{uuid.uuid4().hex[:12]}"
    realtime = f"{url}/api/v1/sites/{account.site_id}/realtime"
    with EventStream(realtime, headers=account.bearer) as earlier:
        assert earlier.next().comments == ["subscribed"]
        _track(url, account, "/before", visitor, BRITAIN)
        assert earlier.next_event(timeout=FIRST_EVENT).json()["visitor_id"] == visitor
        # A stream opened after the visit learns where its visitor was from the site's recent events.
        with EventStream(realtime, headers=account.bearer) as later:
            assert later.next().comments == ["subscribed"]
            paid = httpx.post(
                f"{url}/api/v1/payments",
                json={
                    "website_id": account.site_id,
                    "amount": "10",
                    "currency": "USD",
                    "transaction_id": f"t-{uuid.uuid4().hex[:8]}",
                    "visitor_id": visitor,
                },
                headers=account.bearer,
                timeout=15,
            )
            assert paid.status_code == 201, paid.text
            message: Message = later.next_event()
    payment = message.json()
    assert (payment["type"], payment["visitor_id"], payment["country"]) == ("purchase", visitor, "GB")
    assert message.id == payment["id"]
