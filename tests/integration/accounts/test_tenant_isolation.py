"""Tenant isolation over every registered route, so routes added later are covered too.

For each route with a ``{website_id}`` path parameter and each of its methods:
anonymous → 401; a signed-in stranger, or their API key → 404; a viewer (or a read-only
key) cannot write → 403. Every other /api/v1 route, except the few public ones, → 401.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute

from datafast.db.models import Role
from tests.integration.accounts.conftest import Browser, Client, Mailbox, signup

PUBLIC = {
    "/api/v1/auth/signup",
    "/api/v1/auth/login",
    "/api/v1/auth/login/two-factor",  # the second step: its signed challenge is the credential
    "/api/v1/auth/verify-email",
    "/api/v1/auth/password-reset",
    "/api/v1/auth/password-reset/confirm",
    "/api/v1/auth/oauth",  # which sign-in buttons to show
    "/api/v1/auth/oauth/{provider:str}/start",
    "/api/v1/auth/oauth/{provider:str}/callback",
    "/api/v1/share/{slug:str}",
    "/api/v1/share/{slug:str}/access",
    "/api/v1/notifications/unsubscribe",  # the mailed link: its signed token is the credential
}
SAFE = {"GET", "HEAD"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    site_role: Role | None
    reads: bool = False
    """A POST that only reads (``opt={"read": True}``, e.g. the Stats API's query): any member may."""
    streams: bool = False
    """An endless Server-Sent Events stream (realtime): a member's request never ends, so the
    member's side is checked where the stream is read (tests/integration/realtime)."""

    def url(self, website_id: str) -> str:
        def fill(match: re.Match[str]) -> str:
            name, kind = match.group(1), match.group(2)
            if name == "website_id":
                return website_id
            return str(uuid.uuid4()) if kind == "uuid" else "x"

        return re.sub(r"\{(\w+):(\w+)\}", fill, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: Litestar) -> list[Endpoint]:
    return [
        Endpoint(
            method,
            route.path,
            handler.opt.get("site_role"),
            bool(handler.opt.get("read")),
            handler.media_type == "text/event-stream",
        )
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        for method in sorted(handler.http_methods - {"OPTIONS"})
    ]


def site_endpoints(app: Litestar) -> list[Endpoint]:
    return [e for e in endpoints(app) if "{website_id:" in e.path]


async def call(
    client: Client, endpoint: Endpoint, website_id: str, who: Browser | dict[str, str] | None
) -> httpx.Response:
    url = endpoint.url(website_id)
    kwargs = {"json": {}} if endpoint.method not in SAFE else {}
    if isinstance(who, Browser):
        return await who.request(endpoint.method, url, **kwargs)
    return await client.request(endpoint.method, url, headers=who or {}, **kwargs)


def test_site_routes_are_found(app: Litestar) -> None:
    """The enumeration must see the routes (else the tests below would pass vacuously)."""
    paths = {e.path for e in site_endpoints(app)}
    assert "/api/v1/sites/{website_id:uuid}" in paths
    assert "/api/v1/sites/{website_id:uuid}/members" in paths
    assert len(site_endpoints(app)) >= 19


async def test_every_site_route_hides_the_site_from_strangers(client: Client, app: Litestar) -> None:
    owner, stranger = await signup(client), await signup(client)
    site = await owner.create_site()
    stranger_key = (await stranger.post("/api/v1/api-keys", json={})).json()["key"]
    stranger_site = await stranger.create_site()
    failures = []

    for endpoint in site_endpoints(app):
        anonymous = await call(client, endpoint, site["id"], None)
        by_stranger = await call(client, endpoint, site["id"], stranger)
        by_key = await call(client, endpoint, site["id"], {"Authorization": f"Bearer {stranger_key}"})
        missing = await call(client, endpoint, str(uuid.uuid4()), stranger)
        got = (anonymous.status_code, by_stranger.status_code, by_key.status_code, missing.status_code)
        if got != (401, 404, 404, 404):
            failures.append((str(endpoint), got))
        for response in (anonymous, by_stranger, by_key):
            assert response.headers["content-type"] == "application/problem+json", endpoint

    assert failures == []
    # nothing the stranger tried changed the owner's site
    assert (await owner.get(f"/api/v1/sites/{site['id']}")).status_code == 200
    assert (await stranger.get(f"/api/v1/sites/{stranger_site['id']}")).status_code == 200


async def test_viewers_and_read_only_keys_cannot_write(
    client: Client, app: Litestar, mailbox: Mailbox
) -> None:
    owner, viewer = await signup(client), await signup(client)
    site = await owner.create_site()
    await owner.post(
        f"/api/v1/sites/{site['id']}/invitations", json={"email": viewer.email, "role": "viewer"}
    )
    token = await mailbox.token(viewer.email, "You are invited")
    assert (await viewer.post("/api/v1/invitations/accept", json={"token": token})).status_code == 200
    read_only = (await owner.post("/api/v1/api-keys", json={"read_only": True})).json()["key"]
    failures = []

    for endpoint in site_endpoints(app):
        if endpoint.streams:
            continue
        if endpoint.method in SAFE or endpoint.reads:
            response = await call(client, endpoint, site["id"], viewer)
            # some reads are for admins; a made-up sub-resource (funnel, visitor…) is not found
            allowed = (200, 403, 404) if endpoint.path.count("{") > 1 else (200, 403)
            if response.status_code not in allowed:
                failures.append((str(endpoint), "viewer read", response.status_code))
            if endpoint.reads:
                by_key = await call(client, endpoint, site["id"], {"Authorization": f"Bearer {read_only}"})
                # A POST read (a query, a privacy export) answers 400 to the empty body: past access.
                if by_key.status_code not in ((200,) if endpoint.method in SAFE else (200, 400)):
                    failures.append((str(endpoint), "read-only key read", by_key.status_code))
            continue
        if endpoint.site_role != Role.VIEWER:  # e.g. leaving a team is a write any member may do
            by_viewer = await call(client, endpoint, site["id"], viewer)
            if by_viewer.status_code != 403:
                failures.append((str(endpoint), "viewer", by_viewer.status_code))
        by_key = await call(client, endpoint, site["id"], {"Authorization": f"Bearer {read_only}"})
        if by_key.status_code != 403:
            failures.append((str(endpoint), "read-only key", by_key.status_code))

    assert failures == []
    assert (await owner.get(f"/api/v1/sites/{site['id']}")).status_code == 200


async def test_every_other_private_route_needs_credentials(client: Client, app: Litestar) -> None:
    private = [
        e
        for e in endpoints(app)
        if e.path.startswith("/api/v1/") and "{website_id:" not in e.path and e.path not in PUBLIC
    ]
    assert len(private) >= 8
    failures = []
    for endpoint in private:
        response = await call(client, endpoint, str(uuid.uuid4()), None)
        if response.status_code != 401:
            failures.append((str(endpoint), response.status_code))

    assert failures == []
