"""Share-link embeds: the origins a link may be framed on (checked, normalised), set when the link is
made or later, and the ``frame-ancestors`` its page — and only its page — sends. On both modes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.accounts.conftest import Browser, Client, signup

NONE = "frame-ancestors 'none'"


def _frame_ancestors(response: httpx.Response) -> str:
    directives = [d.strip() for d in response.headers["content-security-policy"].split(";")]
    (found,) = [d for d in directives if d.startswith("frame-ancestors")]
    return found


async def _link(owner: Browser, site: dict[str, Any], **body: Any) -> dict[str, Any]:
    made = await owner.post(f"/api/v1/sites/{site['id']}/share-links", json=body)
    assert made.status_code == 201, made.text
    link: dict[str, Any] = made.json()
    return link


async def test_a_links_embed_origins_are_normalised_and_can_be_changed(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    link = await _link(
        owner,
        site,
        name="blog",
        embed_origins=[
            "https://Blog.Example.com/",
            "https://blog.example.com:443",  # the same origin again
            "https://docs.example.com:8443",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "https://bücher.example",
        ],
    )
    assert link["embed_origins"] == [
        "https://blog.example.com",
        "https://docs.example.com:8443",
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "https://xn--bcher-kva.example",
    ]
    assert link["embed_url"] == link["url"] + "?embed=1"
    listed = (await owner.get(f"/api/v1/sites/{site['id']}/share-links")).json()
    assert [entry["embed_origins"] for entry in listed] == [link["embed_origins"]]

    changed = await owner.patch(
        f"/api/v1/sites/{site['id']}/share-links/{link['id']}",
        json={"embed_origins": ["https://www.example.org"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["embed_origins"] == ["https://www.example.org"]
    assert changed.json()["name"] == "blog"  # what the change does not name stays
    assert changed.json()["slug"] == link["slug"]
    renamed = await owner.patch(f"/api/v1/sites/{site['id']}/share-links/{link['id']}", json={"name": "docs"})
    assert renamed.json()["embed_origins"] == ["https://www.example.org"]
    assert renamed.json()["name"] == "docs"


@pytest.mark.parametrize(
    "origin",
    [
        "http://example.com",  # plain http off localhost
        "https://example.com/dashboard",  # a path
        "https://example.com?x=1",
        "https://example.com#top",
        "https://*.example.com",  # wildcards
        "*",
        "'self'",
        "'none'",
        "https:",
        "data:",
        "javascript:alert(1)",
        "ftp://example.com",
        "https://example.com; script-src *",  # another directive
        "https://example.com https://evil.example",
        "https://user:pass@example.com",
        "https://exa_mple.com",
        "https://example.com:99999",
        "example.com",
        "",
    ],
)
async def test_an_origin_that_is_not_an_https_origin_is_refused_naming_the_field(
    client: Client, origin: str
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    made = await owner.post(f"/api/v1/sites/{site['id']}/share-links", json={"embed_origins": [origin]})
    assert made.status_code == 400, made.text
    assert made.headers["content-type"] == "application/problem+json"
    problem = made.json()
    assert problem["errors"][0]["key"] == "embed_origins"
    assert "embed origin" in problem["detail"]
    assert (await owner.get(f"/api/v1/sites/{site['id']}/share-links")).json() == []  # nothing made

    link = await _link(owner, site, embed_origins=["https://ok.example.com"])
    changed = await owner.patch(
        f"/api/v1/sites/{site['id']}/share-links/{link['id']}", json={"embed_origins": [origin]}
    )
    assert changed.status_code == 400, changed.text
    assert changed.json()["errors"][0]["key"] == "embed_origins"
    listed = (await owner.get(f"/api/v1/sites/{site['id']}/share-links")).json()
    assert listed[0]["embed_origins"] == ["https://ok.example.com"]  # unchanged


async def test_too_many_origins_or_not_a_list_is_a_400(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    many = [f"https://s{n}.example.com" for n in range(21)]
    for body in ({"embed_origins": many}, {"embed_origins": "https://a.example.com"}):
        made = await owner.post(f"/api/v1/sites/{site['id']}/share-links", json=body)
        assert made.status_code == 400, made.text
        assert made.headers["content-type"] == "application/problem+json"


async def test_only_a_signed_in_admin_changes_where_a_link_may_be_embedded(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    link = await _link(owner, site)
    url = f"/api/v1/sites/{site['id']}/share-links/{link['id']}"
    body = {"embed_origins": ["https://evil.example.com"]}
    opened = await client.post(f"/api/v1/share/{link['slug']}/access", json={})
    bearer = {"Authorization": f"Bearer {opened.json()['access_token']}"}
    # A share token sees no route that has not opted in to share links.
    assert (await client.patch(url, json=body, headers=bearer)).status_code == 404
    assert (await client.patch(url, json=body)).status_code == 401
    stranger = await signup(client)
    assert (await stranger.patch(url, json=body)).status_code == 404
    other_site = await owner.create_site()
    wrong = f"/api/v1/sites/{other_site['id']}/share-links/{link['id']}"
    assert (await owner.patch(wrong, json=body)).status_code == 404  # not that site's link
    assert (await owner.get(f"/api/v1/sites/{site['id']}/share-links")).json()[0]["embed_origins"] == []


async def test_the_share_page_may_be_framed_by_its_links_origins_and_everything_else_by_none(
    client: Client,
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    embedded = await _link(owner, site, embed_origins=["https://blog.example.com", "http://localhost:3000"])
    plain = await _link(owner, site)

    page = await client.get(f"/share/{embedded['slug']}", params={"embed": "1"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert _frame_ancestors(page) == "frame-ancestors https://blog.example.com http://localhost:3000"
    assert "x-frame-options" not in page.headers
    # The rest of the policy is the app's own.
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "default-src 'self'" in page.headers["content-security-policy"]

    # Everything else keeps 'none' and X-Frame-Options: DENY: another link's page, a page of no
    # link, the dashboard, and what the framed page loads (not documents: never framed themselves).
    asset = next(part.split('"')[0] for part in page.text.split('src="/assets/')[1:])
    others = [
        f"/share/{plain['slug']}",
        "/share/no-such-link",
        "/",
        f"/sites/{site['id']}",
        f"/assets/{asset}",
        f"/api/v1/share/{embedded['slug']}",
        "/api/v1/sites",
    ]
    for path in others:
        answer = await client.get(path)
        assert _frame_ancestors(answer) == NONE, path
        assert answer.headers["x-frame-options"] == "DENY", path
    opened = await client.post(f"/api/v1/share/{embedded['slug']}/access", json={})
    assert _frame_ancestors(opened) == NONE

    # No origins left: framing refused again.
    cleared = await owner.patch(
        f"/api/v1/sites/{site['id']}/share-links/{embedded['id']}", json={"embed_origins": []}
    )
    assert cleared.status_code == 200
    again = await client.get(f"/share/{embedded['slug']}")
    assert _frame_ancestors(again) == NONE
    assert again.headers["x-frame-options"] == "DENY"


async def test_a_revoked_links_page_may_no_longer_be_framed(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    link = await _link(owner, site, embed_origins=["https://blog.example.com"])
    assert "https://blog.example.com" in _frame_ancestors(await client.get(f"/share/{link['slug']}"))
    assert (await owner.delete(f"/api/v1/sites/{site['id']}/share-links/{link['id']}")).status_code == 204
    answer = await client.get(f"/share/{link['slug']}")
    assert _frame_ancestors(answer) == NONE
    assert answer.headers["x-frame-options"] == "DENY"
