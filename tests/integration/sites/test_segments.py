"""Saved segments over HTTP, on both modes: who may read and write them, what is refused (problem
details naming the field), the per-site limits, and that a segment's filters give the Stats API the
numbers of the same filters passed directly (and of the truth computed from the generated visits)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Annotation, Segment
from datafast.domain.sites.segments import MAX_SEGMENTS
from datafast.lib.adapters import Adapters
from tests.integration.accounts.conftest import Client, Mailbox, signup
from tests.integration.analytics.test_api import api_key, bearer, site_with_traffic, week
from tests.integration.analytics.traffic import F
from tests.integration.sites.team import make_team

PAID_EU = [
    {"dimension": "country", "operator": "is", "values": ["FR", "DE"]},
    {"dimension": "source", "operator": "is_not", "values": ["Direct"]},
]


def dashboard_filter(item: dict[str, Any]) -> str:
    """A stored filter as the dashboard writes it in its URL (``source==Google|Bing``)."""
    op = {"is": "==", "is_not": "!=", "contains": "=~", "not_contains": "!~"}[item["operator"]]
    return f"{item['dimension']}{op}{'|'.join(item['values'])}"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_members_list_segments_and_admins_save_rename_and_delete_them(
    client: Client, mailbox: Mailbox
) -> None:
    team = await make_team(client, mailbox)
    url = f"{team.base}/segments"

    made = await team.admin.post(url, json={"name": "  Paid   EU ", "filters": PAID_EU})
    assert made.status_code == 201, made.text
    segment = made.json()
    assert segment["name"] == "Paid EU"  # spaces tidied
    assert segment["filters"] == PAID_EU
    other = await team.owner.post(
        url, json={"name": "Blog readers", "filters": [{"dimension": "page", "values": ["/blog"]}]}
    )
    assert other.status_code == 201, other.text
    assert other.json()["filters"] == [{"dimension": "page", "values": ["/blog"], "operator": "is"}]

    # Every member reads them, by name.
    for member in (team.owner, team.admin, team.viewer):
        listed = await member.get(url)
        assert listed.status_code == 200, listed.text
        assert [s["name"] for s in listed.json()] == ["Blog readers", "Paid EU"]
    # A viewer changes nothing.
    sid = f"{url}/{segment['id']}"
    problem(await team.viewer.post(url, json={"name": "Mine", "filters": PAID_EU}), 403)
    problem(await team.viewer.patch(sid, json={"name": "Renamed"}), 403)
    problem(await team.viewer.delete(sid), 403)
    # Nor does someone outside the team see them.
    problem(await team.stranger.get(url), 404)
    problem(await team.stranger.delete(sid), 404)

    renamed = await team.owner.patch(sid, json={"name": "Europe, not direct"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["filters"]) == ("Europe, not direct", PAID_EU)
    refiltered = await team.admin.patch(
        sid, json={"filters": [{"dimension": "prop:plan", "operator": "contains", "values": ["pro"]}]}
    )
    assert refiltered.status_code == 200, refiltered.text
    assert refiltered.json()["name"] == "Europe, not direct"
    assert refiltered.json()["filters"] == [
        {"dimension": "prop:plan", "operator": "contains", "values": ["pro"]}
    ]
    assert refiltered.json()["updated_at"] > segment["updated_at"]

    assert (await team.admin.delete(sid)).status_code == 204
    problem(await team.admin.delete(sid), 404)
    problem(await team.admin.patch(sid, json={"name": "Back"}), 404)
    assert [s["name"] for s in (await team.viewer.get(url)).json()] == ["Blog readers"]


async def test_api_keys_read_segments_with_read_and_write_them_with_write(
    client: Client, mailbox: Mailbox
) -> None:
    team = await make_team(client, mailbox)
    url = f"{team.base}/segments"
    read_only = bearer(await api_key(team.owner, read_only=True))
    writer = bearer(await api_key(team.owner, scopes=["read", "write"]))

    made = await client.post(url, json={"name": "By key", "filters": PAID_EU}, headers=writer)
    assert made.status_code == 201, made.text
    problem(await client.post(url, json={"name": "Refused", "filters": PAID_EU}, headers=read_only), 403)
    listed = await client.get(url, headers=read_only)
    assert [s["name"] for s in listed.json()] == ["By key"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"name": "x", "filters": [{"dimension": "colour", "values": ["red"]}]}, "filters[0].dimension"),
        ({"name": "x", "filters": [{"dimension": "prop:", "values": ["a"]}]}, "filters[0].dimension"),
        (
            {"name": "x", "filters": [PAID_EU[0], {"dimension": "source", "values": ["Google|Bing"]}]},
            "filters[1].values",
        ),
        ({"name": "x", "filters": [{"dimension": "source", "values": [""]}]}, "filters[0].values"),
        ({"name": "   ", "filters": PAID_EU}, "name"),
        ({"name": "x", "filters": []}, "filters"),
        ({"name": "x", "filters": [{"dimension": "source", "operator": "like", "values": ["a"]}]}, None),
        ({"name": "x", "filters": [{"dimension": "source", "values": []}]}, None),
        ({"name": "x", "filters": [{"dimension": "source", "values": ["a"]}] * 21}, "filters"),
        ({"name": "x" * 101, "filters": PAID_EU}, "name"),
        ({"name": "x", "filters": PAID_EU, "colour": "red"}, None),
        ({"filters": PAID_EU}, None),
        ({"name": "x", "filters": "source==Google"}, "filters"),
    ],
)
async def test_a_bad_segment_is_a_400_problem_naming_what_is_wrong(
    client: Client, body: dict[str, Any], key: str | None
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/segments"

    detail = problem(await owner.post(url, json=body), 400)

    assert detail["errors"], detail
    if key is not None:
        assert key in [e["key"] for e in detail["errors"]], detail
    assert (await owner.get(url)).json() == []


async def test_a_bad_segment_update_is_refused_and_changes_nothing(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/segments"
    segment = (await owner.post(url, json={"name": "Good", "filters": PAID_EU})).json()

    detail = problem(
        await owner.patch(
            f"{url}/{segment['id']}", json={"filters": [{"dimension": "nope", "values": ["a"]}]}
        ),
        400,
    )

    assert detail["errors"] == [{"key": "filters[0].dimension", "message": detail["errors"][0]["message"]}]
    assert "unknown dimension 'nope'" in detail["detail"]
    assert (await owner.get(url)).json()[0]["filters"] == PAID_EU


async def test_names_are_unique_per_site_and_a_site_keeps_at_most_100_segments(client: Client) -> None:
    owner = await signup(client)
    site, other_site = await owner.create_site(), await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/segments"
    first = (await owner.post(url, json={"name": "Same", "filters": PAID_EU})).json()
    second = (await owner.post(url, json={"name": "Other", "filters": PAID_EU})).json()

    problem(await owner.post(url, json={"name": "Same", "filters": PAID_EU}), 409)
    problem(await owner.patch(f"{url}/{second['id']}", json={"name": "Same"}), 409)
    assert (await owner.patch(f"{url}/{first['id']}", json={"name": "Same"})).status_code == 200
    # Another site may use the name; its segments are its own.
    other_url = f"/api/v1/sites/{other_site['id']}/segments"
    assert (await owner.post(other_url, json={"name": "Same", "filters": PAID_EU})).status_code == 201
    problem(await owner.delete(f"{other_url}/{first['id']}"), 404)

    for index in range(2, MAX_SEGMENTS):
        made = await owner.post(url, json={"name": f"Segment {index}", "filters": PAID_EU})
        assert made.status_code == 201, made.text
    assert len((await owner.get(url)).json()) == MAX_SEGMENTS
    full = problem(await owner.post(url, json={"name": "One too many", "filters": PAID_EU}), 409)
    assert "at most 100 segments" in full["detail"]
    assert (await owner.delete(f"{url}/{second['id']}")).status_code == 204
    assert (await owner.post(url, json={"name": "One too many", "filters": PAID_EU})).status_code == 201


async def test_a_share_link_sees_no_segments_nor_notes(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    base = f"/api/v1/sites/{site['id']}"
    assert (
        await owner.post(f"{base}/segments", json={"name": "Team only", "filters": PAID_EU})
    ).status_code == 201
    note = await owner.post(f"{base}/annotations", json={"date": "2026-10-14", "text": "Internal"})
    assert note.status_code == 201, note.text
    link = (await owner.post(f"{base}/share-links", json={})).json()
    shared = bearer(
        (await client.post(f"/api/v1/share/{link['slug']}/access", json={})).json()["access_token"]
    )

    assert (await client.get(f"{base}/metrics?period=7d", headers=shared)).status_code == 200
    problem(await client.get(f"{base}/segments", headers=shared), 404)
    problem(await client.get(f"{base}/annotations", headers=shared), 404)
    problem(
        await client.post(f"{base}/segments", json={"name": "x", "filters": PAID_EU}, headers=shared), 404
    )
    problem(await client.delete(f"{base}/annotations/{note.json()['id']}", headers=shared), 404)


async def test_a_segments_filters_give_the_numbers_of_the_same_filters_passed_directly(
    client: Client, adapters: Adapters
) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=40)
    base = f"/api/v1/sites/{site['id']}"
    filters = [
        {"dimension": "source", "operator": "is", "values": ["Google", "Twitter", "Direct"]},
        {"dimension": "page", "operator": "contains", "values": ["blog", "pricing"]},
        {"dimension": "device", "operator": "is_not", "values": ["mobile"]},
    ]
    made = await owner.post(f"{base}/segments", json={"name": "Readers", "filters": filters})
    assert made.status_code == 201, made.text
    segment = next(s for s in (await owner.get(f"{base}/segments")).json() if s["name"] == "Readers")
    metrics = ["visitors", "visits", "pageviews", "bounce_rate", "revenue", "conversions"]

    # The segment's filters in a /query body, and as the dashboard puts them in its URL.
    by_segment = await owner.post(
        f"{base}/query", json={"metrics": metrics, "filters": segment["filters"], "date_range": "7d"}
    )
    query = [("period", "7d"), ("metrics", ",".join(metrics))]
    by_segment_url = await owner.get(
        f"{base}/metrics", params=[*query, *(("filter", dashboard_filter(f)) for f in segment["filters"])]
    )
    directly = await owner.get(
        f"{base}/metrics",
        params=[
            *query,
            ("filter", "source==Google|Twitter|Direct"),
            ("filter", "page=~blog|pricing"),
            ("filter", "device!=mobile"),
        ],
    )

    for response in (by_segment, by_segment_url, directly):
        assert response.status_code == 200, response.text
    totals = directly.json()["totals"]
    assert by_segment.json()["totals"] == totals
    assert by_segment_url.json()["totals"] == totals
    start, end = week(truth)
    expected = truth.totals(
        start,
        end,
        [F(f["dimension"], f["operator"], tuple(f["values"])) for f in filters],
        ["visitors", "visits", "pageviews", "bounce_rate"],
    )
    assert {m: totals[m] for m in expected} == pytest.approx(expected)
    assert 0 < totals["visitors"] < truth.totals(start, end, [], ["visitors"])["visitors"]


async def test_deleting_a_site_deletes_its_segments_and_notes(
    client: Client, db_session: AsyncSession
) -> None:
    owner = await signup(client)
    site, kept = await owner.create_site(), await owner.create_site()
    for target in (site, kept):
        base = f"/api/v1/sites/{target['id']}"
        assert (
            await owner.post(f"{base}/segments", json={"name": "S", "filters": PAID_EU})
        ).status_code == 201
        made = await owner.post(f"{base}/annotations", json={"date": "2026-10-14", "text": "Launch"})
        assert made.status_code == 201, made.text

    assert (await owner.delete(f"/api/v1/sites/{site['id']}")).status_code == 204

    async def count(model: type[Segment] | type[Annotation], website_id: str) -> int:
        query = select(func.count()).select_from(model).where(model.website_id == uuid.UUID(website_id))
        return int(await db_session.scalar(query) or 0)

    assert [await count(m, site["id"]) for m in (Segment, Annotation)] == [0, 0]
    assert [await count(m, kept["id"]) for m in (Segment, Annotation)] == [1, 1]
