"""Per-visitor privacy requests: the export holds every row about the person, the erase leaves no
table holding their visitor ids or email hash, payments stay (unlinked), and the dashboards still
add up — in both modes (traffic through /track, money through the Payments API)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.local_days import LocalDays
from datafast.domain.revenue.service import email_hash
from datafast.domain.sites import privacy
from tests.helpers import CHROME_MAC
from tests.integration.accounts.conftest import Browser, Mailbox, signup
from tests.integration.accounts.test_sites import invite
from tests.integration.revenue.conftest import Client, Shop

HOUR = 3600 * 1000


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


@dataclass
class Person:
    """A visitor as the test drives them, and what it sent for them (the truth to compare with)."""

    visitor_ids: list[str]
    pageviews: int = 0
    goals: int = 0
    event_ids: list[str] = field(default_factory=list)
    """The id /track answered for each event sent."""
    visits: set[str] = field(default_factory=set)

    @property
    def events(self) -> int:
        return len(self.event_ids)


async def _send(shop: Shop, person: Person, visitor: str, session: str, ago_ms: float, **body: Any) -> None:
    """One event through /track as the tracker sends it; its id is kept as the person's."""
    now = time.time() * 1000
    path = body.pop("path", "/")
    response = await shop.client.post(
        "/track",
        json={
            "website_id": shop.id,
            "page_url": f"https://{shop.site['domain']}{path}",
            "visitor_id": visitor,
            "session_id": session,
            "timestamp": now - ago_ms,
            "sent_at": now,
            **body,
        },
        headers={"user-agent": CHROME_MAC},
    )
    assert response.status_code == 202, response.text
    person.event_ids.append(str(uuid.UUID(hex=response.json()["id"].removeprefix("evt_"))))


async def _browse(shop: Shop, person: Person, visitor: str, ago_ms: float, pages: list[str]) -> str:
    """One visit (the tracker's session id): pageviews a minute apart."""
    session = f"s-{uuid.uuid4().hex[:10]}"
    for i, page in enumerate(pages):
        await _send(shop, person, visitor, session, ago_ms - i * 60_000, path=page)
    person.pageviews += len(pages)
    person.visits.add(session)
    return session


async def _key(shop: Shop) -> dict[str, str]:
    response = await shop.owner.post("/api/v1/api-keys", json={})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


async def _pay(shop: Shop, key: dict[str, str], **body: Any) -> None:
    response = await shop.client.post(
        "/api/v1/payments", json={"website_id": shop.id, "currency": "USD", **body}, headers=key
    )
    assert response.status_code == 201, response.text


async def _scalar(shop: Shop, sql: str, **parameters: Any) -> int:
    result = await shop.adapters.event_store.query(sql, parameters={"s": shop.id, **parameters})
    return int(result.result_rows[0][0])


@dataclass
class World:
    ada: Person
    others: list[Person]
    email: str
    user_id: str
    payments: dict[str, int]
    """transaction id → amount in cents."""
    ada_payments: set[str]


async def _world(shop: Shop) -> World:
    """Ada on a laptop (two visits, two days apart, identified) and a phone (identified with the
    same email, differently cased), Bob and Cy; payments by metadata, by email, and Bob's."""
    email, user_id = f"{_unique('ada')}@example.com", _unique("user")
    laptop, phone = _unique("v-ada-laptop"), _unique("v-ada-phone")
    ada = Person([laptop, phone])
    bob, cy = Person([_unique("v-bob")]), Person([_unique("v-cy")])
    await _browse(shop, ada, laptop, 48 * HOUR, ["/", "/pricing"])
    await _browse(shop, ada, laptop, 2 * HOUR, ["/", "/docs", "/pricing"])
    session = f"s-{uuid.uuid4().hex[:10]}"
    await _send(shop, ada, laptop, session, HOUR, path="/signup")
    await _send(
        shop,
        ada,
        laptop,
        session,
        HOUR - 1000,
        event_type="identify",
        props={"user_id": user_id, "email": email},
    )
    await _send(shop, ada, laptop, session, HOUR - 2000, event_type="goal", goal_name="signup")
    ada.pageviews, ada.goals = ada.pageviews + 1, ada.goals + 1
    ada.visits.add(session)
    on_phone = await _browse(shop, ada, phone, 47 * HOUR, ["/blog"])
    await _send(
        shop,
        ada,
        phone,
        on_phone,
        47 * HOUR - 1000,
        event_type="identify",
        props={"email": f"  {email.upper()} "},
    )
    await _browse(shop, bob, bob.visitor_ids[0], 48 * HOUR - 5 * 60_000, ["/", "/pricing"])
    await _browse(shop, bob, bob.visitor_ids[0], 30 * 60_000, ["/docs"])
    session = f"s-{uuid.uuid4().hex[:10]}"
    await _send(shop, bob, bob.visitor_ids[0], session, 20 * 60_000, event_type="goal", goal_name="signup")
    bob.goals += 1
    bob.visits.add(session)
    await _browse(shop, cy, cy.visitor_ids[0], 3 * HOUR, ["/", "/about"])
    await shop.drained()
    await shop.wait_for_sessions(4)

    key = await _key(shop)
    payments = {"tx-ada-meta": 4900, "tx-ada-mail": 2000, "tx-bob": 1500}
    await _pay(shop, key, amount=49, transaction_id="tx-ada-meta", visitor_id=laptop)
    await _pay(shop, key, amount=20, transaction_id="tx-ada-mail", email=email)
    await _pay(shop, key, amount=15, transaction_id="tx-bob", visitor_id=bob.visitor_ids[0])
    return World(ada, [bob, cy], email, user_id, payments, {"tx-ada-meta", "tx-ada-mail"})


async def _metrics(shop: Shop, period: str = "7d") -> dict[str, Any]:
    response = await shop.owner.get(f"/api/v1/sites/{shop.id}/metrics", params={"period": period})
    assert response.status_code == 200, response.text
    totals: dict[str, Any] = response.json()["totals"]
    return totals


async def _everything(shop: Shop, needles: list[str]) -> dict[str, int]:
    """Rows of every ClickHouse table of our database (found in system.columns, so a table added
    later is searched too) whose columns, as text, contain any of ``needles``."""
    store = shop.adapters.event_store
    columns = await store.query(
        "SELECT c.table, groupArray(c.name), groupArray(c.type) FROM system.columns AS c"
        " INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table"
        " WHERE c.database = {db:String} AND t.engine LIKE '%MergeTree' GROUP BY c.table",
        parameters={"db": store.database},
    )
    found: dict[str, int] = {}
    for table, names, types in columns.result_rows:
        # Aggregate states hold 64-bit hashes of visitor ids, never the ids (the Stats API checks them).
        text = [
            f"toString(`{n}`)" for n, t in zip(names, types, strict=True) if "AggregateFunction(" not in t
        ]
        where = "website_id = {s:UUID} AND " if "website_id" in names else ""
        count = await _scalar(
            shop,
            f"SELECT count() FROM `{table}` WHERE {where}"
            f"multiSearchAny(concat({', '.join(text)}, ''), {{needles:Array(String)}})",
            needles=needles,
        )
        if count:
            found[str(table)] = count
    return found


async def _config_rows_holding(shop: Shop, needles: list[str]) -> list[str]:
    """Every row of every table of the config database (reflected: new tables too) as text."""
    engine = create_async_engine(shop.client.app.state.settings.database_url)  # type: ignore[attr-defined]
    found = []
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            assert "privacy_requests" in names
            for name in names:
                # Raw rows, no type conversion: whatever a column holds, as the driver reads it.
                result = await connection.exec_driver_sql(f'SELECT * FROM "{name}"')
                for row in result.all():
                    text = repr(tuple(row)).lower()
                    if any(needle.lower() in text for needle in needles):
                        found.append(f"{name}: {text[:200]}")
    finally:
        await engine.dispose()
    return found


async def _request(browser: Browser, shop: Shop, kind: str, **body: Any) -> httpx.Response:
    return await browser.post(f"/api/v1/sites/{shop.id}/privacy/{kind}", json=body)


async def test_export_holds_every_row_and_erase_leaves_nothing_while_the_dashboard_adds_up(
    shop: Shop,
) -> None:
    world = await _world(shop)
    ada, others = world.ada, world.others
    hashed = email_hash(world.email)
    # The site's visitor states by local day are ready (the local_days job ran when the site was
    # created, or runs now): the erase must take the person out of them too.
    local = LocalDays(shop.adapters.event_store, settle=0)
    await local.prepare(shop.id, "UTC")
    assert await local.ready(shop.id) == {0}
    before = await _metrics(shop)
    assert before["visitors"] == 4
    assert before["pageviews"] == ada.pageviews + sum(o.pageviews for o in others)

    # Export by email: both of Ada's visitor ids, every row of hers, the payments linked to her.
    response = await _request(shop.owner, shop, "export", email=world.email.upper())
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    exported = response.json()
    assert sorted(exported["visitor_ids"]) == sorted(ada.visitor_ids)
    assert exported["email_hashes"] == [hashed]
    assert exported["user_ids"] == [world.user_id]
    tables = exported["tables"]
    events = tables["events"]
    assert sorted(e["event_id"] for e in events) == sorted(ada.event_ids)
    assert sum(1 for e in events if e["event_type"] == "pageview") == ada.pageviews
    assert {e["visitor_id"] for e in events} == set(ada.visitor_ids)
    assert sum(e["sign"] for e in tables["sessions"]) == len(ada.visits)
    assert {p["transaction_id"] for p in tables["payments"]} == world.ada_payments
    # …and exactly what the tables hold about her, table by table.
    for table, rows in tables.items():
        held = await _scalar(
            shop,
            f"SELECT count() FROM `{table}` WHERE website_id = {{s:UUID}} AND "
            "(visitor_id IN {v:Array(String)}"
            + (" OR email_hash = {h:String})" if table == "payments" else ")"),
            v=ada.visitor_ids,
            h=hashed,
        )
        assert len(rows) == held, table
    # The other ways of naming her find the same person.
    for body in ({"user_id": world.user_id}, {"visitor_id": ada.visitor_ids[1]}):
        again = (await _request(shop.owner, shop, "export", **body)).json()
        assert sorted(again["visitor_ids"]) == sorted(ada.visitor_ids), body
        assert sorted(e["event_id"] for e in again["tables"]["events"]) == sorted(ada.event_ids)

    # Erase.
    response = await _request(shop.owner, shop, "erase", email=world.email)
    assert response.status_code == 200, response.text
    erased = response.json()
    assert erased["visitors"] == 2
    assert erased["deleted"]["events"] == ada.events
    assert erased["unlinked"] == {"payments": len(world.ada_payments)}
    assert len(erased["rebuilt_days"]) >= 2

    # No ClickHouse table, no config table holds her ids or email hash any more.
    needles = [*ada.visitor_ids, hashed, world.user_id]
    assert await _everything(shop, needles) == {}
    assert await _config_rows_holding(shop, [*needles, world.email]) == []
    # Bob and Cy are untouched (the search does find what is there).
    assert set(await _everything(shop, [others[0].visitor_ids[0]])) == {
        "events",
        "sessions",
        "payments",
        "credits",
    }

    # The payments stay, unlinked: revenue unchanged, Ada's part now from no visitor.
    payments = await shop.payments()
    assert {p["transaction_id"]: p["amount"] for p in payments} == world.payments
    for payment in payments:
        if payment["transaction_id"] in world.ada_payments:
            assert (payment["visitor_id"], payment["email_hash"], payment["link"]) == ("", "", "erased")

    # The dashboard (its rollups) equals the truth computed from what was sent, without Ada.
    after = await _metrics(shop)
    assert after["visitors"] == 2
    assert after["visits"] == sum(len(o.visits) for o in others)
    assert after["pageviews"] == sum(o.pageviews for o in others)
    assert after["events"] == sum(o.events for o in others)
    assert after["conversions"] == 1
    assert after["revenue"] == before["revenue"] == sum(world.payments.values())
    # The local days were dropped with the erase; filled again (the next job run), they agree.
    await local.prepare(shop.id, "UTC")
    assert await local.ready(shop.id) == {0}
    await ResultCache(shop.adapters.cache, 300).invalidate([shop.id])
    assert await _metrics(shop) == after
    # …and the same as the raw tables say (the rollups were rebuilt, not left counting her).
    raw_pageviews = await _scalar(
        shop, "SELECT countIf(event_type = 'pageview') FROM events WHERE website_id = {s:UUID}"
    )
    rolled = await _scalar(
        shop,
        "SELECT sum(pageviews) FROM events_daily WHERE website_id = {s:UUID} AND dimension = ''",
    )
    assert rolled == raw_pageviews == after["pageviews"]
    visits = await _scalar(shop, "SELECT sum(sign) FROM sessions WHERE website_id = {s:UUID}")
    rolled_visits = await _scalar(
        shop, "SELECT sum(visits) FROM sessions_hourly WHERE website_id = {s:UUID} AND dimension = ''"
    )
    assert rolled_visits == visits == after["visits"]

    # Nothing is found again; both requests are on record, without any identifier.
    again = (await _request(shop.owner, shop, "export", email=world.email)).json()
    assert again["visitor_ids"] == []
    assert again["tables"] == {}
    records = (await shop.owner.get(f"/api/v1/sites/{shop.id}/privacy/requests")).json()
    kinds = sorted((r["kind"], r["matched_by"]) for r in records)
    assert kinds == [
        ("erase", "email"),
        ("export", "email"),
        ("export", "email"),
        ("export", "user_id"),
        ("export", "visitor_id"),
    ]
    assert all(r["requested_by"] == shop.owner.email for r in records)


async def test_a_visitor_erased_mid_visit_starts_a_new_visit_with_their_next_event(shop: Shop) -> None:
    """Ingest's open-visit state is forgotten too: the next event does not cancel a deleted row."""
    visitor, person = _unique("v-live"), Person([])
    session = await _browse(shop, person, visitor, 10 * 60_000, ["/", "/pricing"])
    await shop.drained()
    await shop.wait_for_sessions(1)

    response = await _request(shop.owner, shop, "erase", visitor_id=visitor)
    assert response.status_code == 200, response.text
    assert response.json()["deleted"]["events"] == 2

    await _send(shop, person, visitor, session, 60_000, path="/docs")
    await shop.drained()
    await shop.wait_for_sessions(1)
    rows = await shop.adapters.event_store.query(
        "SELECT sign, pageviews FROM sessions WHERE website_id = {s:UUID} ORDER BY version",
        parameters={"s": shop.id},
    )
    assert rows.result_rows == [(1, 1)]  # a new visit of one pageview, no cancel row
    totals = await _metrics(shop)
    assert (totals["visits"], totals["pageviews"], totals["visitors"]) == (1, 1, 1)


async def test_only_admins_of_the_site_may_ask_and_bodies_are_checked(
    shop: Shop, client: Client, mailbox: Mailbox
) -> None:
    viewer, stranger = await signup(client), await signup(client)
    await invite(shop.owner, shop.id, viewer, "viewer", mailbox)
    body = {"visitor_id": "v-1"}
    for kind in ("export", "erase"):
        assert (await _request(viewer, shop, kind, **body)).status_code == 403
        assert (await _request(stranger, shop, kind, **body)).status_code == 404
        missing = await shop.owner.post(f"/api/v1/sites/{uuid.uuid4()}/privacy/{kind}", json=body)
        assert missing.status_code == 404
        for bad in (
            {},
            {"visitor_id": "v-1", "email": "a@example.com"},
            {"email": "not-an-email"},
            {"visitor_id": ""},
            {"visitor_id": "x" * 321},
            {"visitor": "v-1"},
            {"visitor_id": 5},
        ):
            response = await _request(shop.owner, shop, kind, **bad)
            assert response.status_code == 400, (kind, bad, response.text)
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
    assert (await viewer.get(f"/api/v1/sites/{shop.id}/privacy/requests")).status_code == 403
    # A read-only API key of the owner may export but not erase.
    key = await shop.owner.post("/api/v1/api-keys", json={"read_only": True})
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    url = f"/api/v1/sites/{shop.id}/privacy"
    assert (await client.post(f"{url}/export", json=body, headers=headers)).status_code == 200
    assert (await client.post(f"{url}/erase", json=body, headers=headers)).status_code == 403
    records = (await shop.owner.get(f"{url}/requests")).json()
    assert [(r["kind"], r["requested_by"]) for r in records] == [("export", f"{shop.owner.email} (API key)")]


async def test_rollups_counting_an_event_twice_are_found_and_rebuilt(shop: Shop) -> None:
    """What an erase does when traffic written during its rebuild was counted twice in the rollups
    (the race no lock prevents): the check finds the difference and a rebuild removes it."""
    visitor, person = _unique("v-twice"), Person([])
    await _browse(shop, person, visitor, 5 * 60_000, ["/", "/pricing"])
    await shop.drained()
    await shop.wait_for_sessions(1)
    store = shop.adapters.event_store
    rollups = privacy._Rollups(store, uuid.UUID(shop.id), await privacy._views(store))
    days = {
        row[0]
        for row in (
            await store.query(
                "SELECT DISTINCT toDate(timestamp) FROM events WHERE website_id = {s:UUID}",
                parameters={"s": shop.id},
            )
        ).result_rows
    }
    assert await rollups.agree("events", days)

    # The hourly rows again, as a second insert of the same events would have added them.
    await store.command(
        "INSERT INTO events_hourly SELECT * FROM events_hourly WHERE website_id = {s:UUID}",
        parameters={"s": shop.id},
    )
    assert not await rollups.agree("events", days)
    assert (await _metrics(shop))["pageviews"] == 2 * person.pageviews

    await rollups.rebuild("events", days)
    assert await rollups.agree("events", days)
    assert (await _metrics(shop, "30d"))["pageviews"] == person.pageviews  # not the cached 7 days


async def test_an_erase_that_stopped_after_its_first_rebuild_is_completed_by_asking_again(shop: Shop) -> None:
    """An erase first rebuilds the rollups without the person, then deletes their rows: if it stops
    in between (ClickHouse gone), the dashboard already leaves them out and asking again finishes."""
    gone, stays = Person([_unique("v-gone")]), Person([_unique("v-stays")])
    await _browse(shop, gone, gone.visitor_ids[0], 3 * 60_000, ["/", "/pricing", "/docs"])
    await _browse(shop, stays, stays.visitor_ids[0], 2 * 60_000, ["/"])
    await shop.drained()
    await shop.wait_for_sessions(2)
    store, site = shop.adapters.event_store, uuid.UUID(shop.id)
    subject = privacy.Subject.of(gone.visitor_ids[0], None, None)
    match = await privacy.find(store, site, subject)
    tables = await privacy.privacy_tables(store)
    rollups = privacy._Rollups(store, site, await privacy._views(store))
    for raw, column in (("events", "timestamp"), ("sessions", "started_at")):
        result = await store.query(
            f"SELECT DISTINCT toDate({column}) FROM {raw} WHERE website_id = {{s:UUID}}",
            parameters={"s": shop.id},
        )
        await rollups.rebuild(raw, {row[0] for row in result.result_rows}, without=(tables, match))

    # Stopped here: their rows are still stored, the rollups (and the dashboard) leave them out.
    assert (
        await _scalar(shop, "SELECT count() FROM events WHERE visitor_id = {v:String}", v=gone.visitor_ids[0])
        == 3
    )
    totals = await _metrics(shop)
    assert (totals["visitors"], totals["visits"], totals["pageviews"]) == (1, 1, stays.pageviews)

    again = await _request(shop.owner, shop, "erase", visitor_id=gone.visitor_ids[0])
    assert again.status_code == 200, again.text
    assert again.json()["deleted"]["events"] == 3
    assert await _everything(shop, gone.visitor_ids) == {}
    totals = await _metrics(shop, "30d")
    assert (totals["visitors"], totals["visits"], totals["pageviews"]) == (1, 1, stays.pageviews)
