"""The weekly report mail: a site with known traffic and payments gets exactly those numbers,
through the mail job (SAQ in scaled mode, in-process embedded) to a local SMTP server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.db.config import sqlalchemy_config
from datafast.domain.reports.jobs import SEND_MAIL, WEEKLY_REPORTS
from datafast.lib.adapters import Adapters
from tests.helpers import CHROME_MAC, wait_for_rows
from tests.integration.accounts.conftest import Browser, signup
from tests.integration.reports.conftest import FlakyMailbox

Client = AsyncTestClient[Litestar]

# visitor → (referrer, pageviews); sources as the referrer list names them.
VISITS = {
    "g1": ("https://www.google.com/", 2),
    "g2": ("https://www.google.com/", 1),
    "g3": ("https://www.google.com/", 1),
    "h1": ("https://news.ycombinator.com/", 3),
    "t1": ("https://t.co/abc", 1),
}
PAYMENTS = [("g1", "49.00"), ("h1", "20.00"), ("h1", "5.50")]  # visitor, USD


def _parts(message: Message) -> tuple[str, str]:
    text = html = ""
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):  # lines end in CRLF on the wire
            payload = payload.replace(b"\r\n", b"\n")
            if part.get_content_type() == "text/plain":
                text = payload.decode()
            elif part.get_content_type() == "text/html":
                html = payload.decode()
    return text, html


async def _traffic_and_payments(client: Client, owner: Browser, site: dict[str, Any]) -> None:
    for visitor, (referrer, pages) in VISITS.items():
        events = [
            {
                "website_id": site["id"],
                "page_url": f"https://{site['domain']}/p{i}",
                "referrer": referrer if i == 0 else f"https://{site['domain']}/p{i - 1}",
                "visitor_id": visitor,
            }
            for i in range(pages)
        ]
        response = await client.post("/track", json=events, headers={"user-agent": CHROME_MAC})
        assert response.status_code == 202, response.text
    await wait_for_rows(client.app.state.adapters.event_store, site["id"], sum(p for _, p in VISITS.values()))
    key = await owner.post("/api/v1/api-keys", json={"name": "server"})
    assert key.status_code == 201, key.text
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    for n, (visitor, amount) in enumerate(PAYMENTS):
        body = {
            "website_id": site["id"],
            "amount": amount,
            "currency": "USD",
            "transaction_id": f"tx{n}",
            "visitor_id": visitor,
        }
        paid = await client.post("/api/v1/payments", json=body, headers=headers)
        assert paid.status_code == 201, paid.text


async def _run_weekly_reports(adapters: Adapters, end: datetime) -> Any:
    """What the Monday cron runs: through SAQ to a worker (scaled) or in this process (embedded)."""
    engine = sqlalchemy_config(adapters.settings).get_engine()
    adapters.job_context["engine"] = engine  # embedded: what the app gives in-process jobs
    try:
        return await adapters.queue.apply(WEEKLY_REPORTS, timeout=60, end=end.isoformat())
    finally:
        await engine.dispose()


async def test_weekly_report_mail_shows_exactly_the_sites_traffic_and_revenue_and_unsubscribes(
    client: Client, adapters: Adapters, mailbox: FlakyMailbox
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    other = await owner.create_site()  # not opted in: no report
    opted = await owner.request(
        "PUT", f"/api/v1/account/notifications/{site['id']}", json={"weekly_report": True}
    )
    assert opted.status_code == 200, opted.text
    await _traffic_and_payments(client, owner, site)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)

    queued = await _run_weekly_reports(adapters, end)
    assert [q for q in queued if q.startswith(owner.email)] == [f"{owner.email} {site['domain']}"]
    message = await mailbox.wait_for(owner.email, site["domain"], timeout=30)

    text, html = _parts(message)
    # Truth from what was sent: 5 visitors (3 from Google, 1 each from Hacker News and Twitter),
    # 8 pageviews, 74.50 USD of which 49.00 from Google's visitor and 25.50 from Hacker News's.
    assert "Visitors: 5 (new vs previous week)" in text
    assert "Pageviews: 8" in text
    assert "Revenue: 74.50 USD (new vs previous week)" in text
    sources = text.split("Top sources (visitors):\n", 1)[1].split("\n\n", 1)[0]
    assert sources.splitlines() == ["  Google: 3", "  Hacker News: 1", "  Twitter: 1"]
    revenue = text.split("Revenue by source:\n", 1)[1].split("\n\n", 1)[0]
    assert revenue.splitlines() == ["  Google: 49.00 USD", "  Hacker News: 25.50 USD"]
    for snippet in ("<b>5 (new vs previous week)</b>", "<b>8</b>", "Google</td><td align='right'>49.00 USD"):
        assert snippet in html
    assert other["domain"] not in message["Subject"]
    # (scaled: the PostgreSQL database is the session's; other tests' members may get theirs too)
    assert len([m for m in mailbox.messages if "your week" in m["Subject"] and m["To"] == owner.email]) == 1

    link = re.search(r"Unsubscribe from these reports: (\S+)", text)
    assert link is not None
    assert message["List-Unsubscribe"] == f"<{link.group(1)}>"
    path = httpx.URL(link.group(1))
    forged = await client.get(path.path, params={"token": path.params["token"][:-2] + "00"})
    assert forged.status_code == 400
    unsubscribed = await client.get(path.path, params=dict(path.params))
    assert unsubscribed.status_code == 200, unsubscribed.text
    assert unsubscribed.json() == {"unsubscribed": True, "domain": site["domain"]}
    prefs = (await owner.get("/api/v1/account/notifications")).json()
    assert all(p["weekly_report"] is False for p in prefs)
    assert not [q for q in await _run_weekly_reports(adapters, end) if q.startswith(owner.email)]


async def test_a_week_compares_with_the_week_before(
    client: Client, adapters: Adapters, mailbox: FlakyMailbox
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    await owner.request("PUT", f"/api/v1/account/notifications/{site['id']}", json={"weekly_report": True})
    await _traffic_and_payments(client, owner, site)
    # The week ending tomorrow holds the traffic; the week after compares nothing against it.
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=8)

    assert f"{owner.email} {site['domain']}" in await _run_weekly_reports(adapters, end)
    text, _ = _parts(await mailbox.wait_for(owner.email, site["domain"], timeout=30))

    assert "Visitors: 0 (-100% vs previous week)" in text
    assert "Revenue: 0.00 USD (-100% vs previous week)" in text


@pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
async def test_a_failed_smtp_send_is_retried_by_saq_and_delivered_once(
    client: Client, adapters: Adapters, mailbox: FlakyMailbox
) -> None:
    mailbox.failures = 1

    await adapters.queue.apply(SEND_MAIL, timeout=30, to="founder@example.com", subject="Hello", text="Once.")

    assert mailbox.attempts == 2
    assert [m["Subject"] for m in mailbox.messages] == ["Hello"]


@pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
async def test_scaled_mode_sends_account_mail_through_saq_retrying_a_failed_send(
    client: Client, mailbox: FlakyMailbox
) -> None:
    mailbox.failures = 1  # the verification mail's first send is refused

    user = await signup(client, verified=False)

    await mailbox.wait_for(user.email, "Confirm your email", timeout=30)
    assert mailbox.attempts == 2
    assert len([m for m in mailbox.messages if m["To"] == user.email]) == 1
