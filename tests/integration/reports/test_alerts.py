"""Alerts and the monthly report: a new payment and a traffic spike reach the members who asked
(mail, through the job queue: SAQ scaled, in-process embedded) and the site's chat webhook (a
local stand-in); the monthly report shows exactly the month's numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.db.config import sqlalchemy_config
from datafast.domain.reports.alerts import SPIKE_ALERTS
from datafast.domain.reports.jobs import MONTHLY_REPORTS
from datafast.lib.adapters import Adapters
from tests.helpers import CHROME_MAC, wait_for_rows
from tests.integration.accounts.conftest import Browser, signup
from tests.integration.accounts.test_sites import invite
from tests.integration.reports.conftest import ChatWebhook, FlakyMailbox
from tests.integration.reports.test_weekly_report import _parts, _traffic_and_payments

Client = AsyncTestClient[Litestar]


async def _apply(adapters: Adapters, job: str, **kwargs: Any) -> Any:
    """Run a cron job now: through SAQ to a worker (scaled) or in this process (embedded)."""
    engine = sqlalchemy_config(adapters.settings).get_engine()
    saved = adapters.job_context.get("engine")
    adapters.job_context["engine"] = engine
    try:
        return await adapters.queue.apply(job, timeout=60, **kwargs)
    finally:
        adapters.job_context["engine"] = saved
        await engine.dispose()


async def _prefer(owner: Browser, site: dict[str, Any], **preferences: bool) -> dict[str, Any]:
    response = await owner.request("PUT", f"/api/v1/account/notifications/{site['id']}", json=preferences)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _pay(
    client: Client, headers: dict[str, str], site: dict[str, Any], tx: str, amount: str, **extra: Any
) -> None:
    body = {"website_id": site["id"], "amount": amount, "currency": "USD", "transaction_id": tx, **extra}
    paid = await client.post("/api/v1/payments", json=body, headers=headers)
    assert paid.status_code in (200, 201), paid.text  # 200: the same transaction again


def _payment_mails(mailbox: FlakyMailbox, to: str) -> list[str]:
    return [m["Subject"] for m in mailbox.messages if m["To"] == to and "new payment" in m["Subject"]]


async def test_a_new_payment_is_mailed_to_members_who_asked_and_posted_to_the_sites_chat(
    client: Client, mailbox: FlakyMailbox, chat: ChatWebhook
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    silent = await owner.create_site()  # no alert asked for: nothing
    preferences = await _prefer(owner, site, payment_alerts=True)
    assert preferences["payment_alerts"] is True
    assert preferences["weekly_report"] is False  # only what was given changes
    alerts = await owner.request(
        "PUT", f"/api/v1/sites/{site['id']}/alerts", json={"alert_webhook_url": chat.url}
    )
    assert alerts.status_code == 200, alerts.text
    key = await owner.post("/api/v1/api-keys", json={"name": "server"})
    headers = {"Authorization": f"Bearer {key.json()['key']}"}

    await _pay(client, headers, site, "tx1", "49.00")
    message = await mailbox.wait_for(owner.email, "new payment", timeout=30)
    assert message["Subject"] == f"{site['domain']}: new payment 49.00 USD"
    text, _ = _parts(message)
    assert "49.00 USD from api" in text
    assert (await chat.wait_for(1))[0] == {
        "text": f"{site['domain']}: new payment 49.00 USD\n{text.rstrip()}"
    }

    await _pay(client, headers, site, "tx1", "49.00")  # sent again: stored once, told once
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    await _pay(client, headers, site, "tx-old", "10.00", timestamp=old)  # history, not news
    await _pay(client, headers, silent, "tx-silent", "7.00")
    await _pay(client, headers, site, "tx2", "5.50")
    await mailbox.wait_for(owner.email, "new payment 5.50 USD", timeout=30)
    await chat.wait_for(2)

    assert _payment_mails(mailbox, owner.email) == [
        f"{site['domain']}: new payment 49.00 USD",
        f"{site['domain']}: new payment 5.50 USD",
    ]
    assert len(chat.bodies) == 2


async def test_a_traffic_spike_alerts_once_then_stays_quiet(
    client: Client, adapters: Adapters, mailbox: FlakyMailbox, chat: ChatWebhook
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    calm = await owner.create_site()
    await _prefer(owner, site, spike_alerts=True)
    for target, threshold in ((site, 3), (calm, 10)):
        body = {"spike_threshold": threshold, "alert_webhook_url": chat.url}
        response = await owner.request("PUT", f"/api/v1/sites/{target['id']}/alerts", json=body)
        assert response.status_code == 200, response.text
    # 3 visitors on each site now: 2 from Google, 1 without a referrer.
    for target in (site, calm):
        for visitor, referrer in (
            ("a", "https://www.google.com/"),
            ("b", "https://www.google.com/"),
            ("c", ""),
        ):
            event = {
                "website_id": target["id"],
                "page_url": f"https://{target['domain']}/",
                "referrer": referrer,
            }
            response = await client.post(
                "/track", json={**event, "visitor_id": visitor}, headers={"user-agent": CHROME_MAC}
            )
            assert response.status_code == 202, response.text
        await wait_for_rows(adapters.event_store, target["id"], 3)

    mine = {site["domain"], calm["domain"]}  # (scaled: the PostgreSQL database is the session's)
    assert mine & set(await _apply(adapters, SPIKE_ALERTS)) == {site["domain"]}
    message = await mailbox.wait_for(owner.email, "traffic spike", timeout=30)
    assert message["Subject"] == f"{site['domain']}: traffic spike, 3 current visitors"
    text, _ = _parts(message)
    assert "Top sources: Google (2), Direct (1)" in text
    assert "traffic spike, 3 current visitors" in (await chat.wait_for(1))[0]["text"]

    assert not mine & set(await _apply(adapters, SPIKE_ALERTS))  # quiet for 12 hours
    later = (datetime.now(UTC) + timedelta(hours=13)).isoformat()
    assert not mine & set(await _apply(adapters, SPIKE_ALERTS, now=later))  # nobody is here any more
    assert len([m for m in mailbox.messages if "traffic spike" in m["Subject"]]) == 1


async def test_alert_settings_take_only_listed_chat_hosts_and_only_from_admins(
    client: Client, chat: ChatWebhook, mailbox: FlakyMailbox
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    path = f"/api/v1/sites/{site['id']}/alerts"
    for url in (
        "http://10.0.0.5/hook",
        "https://metadata.google.internal/",
        "ftp://127.0.0.1/x",
        "not a url",
    ):
        refused = await owner.request("PUT", path, json={"alert_webhook_url": url})
        assert refused.status_code == 400, (url, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    too_low = await owner.request("PUT", path, json={"spike_threshold": 0})
    assert too_low.status_code == 400
    assert (await owner.get(path)).json() == {"alert_webhook_url": None, "spike_threshold": None}

    saved = await owner.request("PUT", path, json={"alert_webhook_url": chat.url, "spike_threshold": 50})
    assert saved.json() == {"alert_webhook_url": chat.url, "spike_threshold": 50}

    viewer = await signup(client)
    await invite(owner, site["id"], viewer, "viewer", mailbox)
    assert (await viewer.get(path)).status_code == 200
    assert (await viewer.request("PUT", path, json={"spike_threshold": 1})).status_code == 403
    assert (await owner.get(path)).json()["spike_threshold"] == 50


async def test_the_monthly_report_shows_the_months_numbers_and_unsubscribes_on_its_own(
    client: Client, adapters: Adapters, mailbox: FlakyMailbox
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    await _prefer(owner, site, monthly_report=True, weekly_report=True)
    await _traffic_and_payments(client, owner, site)
    now = datetime.now(UTC)
    next_month = (now.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )

    queued = await _apply(adapters, MONTHLY_REPORTS, end=next_month.isoformat())
    assert f"{owner.email} {site['domain']}" in queued
    message = await mailbox.wait_for(owner.email, "your month", timeout=30)
    assert message["Subject"] == f"{site['domain']}: your month on DataFast ({now:%B %Y})"
    text, _ = _parts(message)
    # The same truth as the weekly report's: 5 visitors, 8 pageviews, 74.50 USD.
    assert "Visitors: 5 (new vs previous month)" in text
    assert "Pageviews: 8" in text
    assert "Revenue: 74.50 USD (new vs previous month)" in text

    link = re.search(r"Unsubscribe from these reports: (\S+)", text)
    assert link is not None
    url = httpx.URL(link.group(1))
    weekly_token = dict(url.params) | {"kind": "weekly"}  # a monthly token does not stop the weekly
    assert (await client.get(url.path, params=weekly_token)).status_code == 400
    assert (await client.get(url.path, params=dict(url.params) | {"kind": "daily"})).status_code == 400
    assert (await client.post(url.path, params=dict(url.params))).status_code == 200
    prefs = [
        p for p in (await owner.get("/api/v1/account/notifications")).json() if p["website_id"] == site["id"]
    ]
    assert prefs[0]["monthly_report"] is False
    assert prefs[0]["weekly_report"] is True
