"""Notes on the chart over HTTP, on both modes: members read them for a date range, admins add and
delete them, and bad input is a 400 problem naming the field. (Share links: see test_segments.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.integration.accounts.conftest import Client, Mailbox, signup
from tests.integration.sites.team import make_team
from tests.integration.sites.test_segments import problem


async def test_members_read_notes_of_a_date_range_and_admins_add_and_delete_them(
    client: Client, mailbox: Mailbox
) -> None:
    team = await make_team(client, mailbox)
    url = f"{team.base}/annotations"
    notes = [
        ("2026-10-01", "Started the newsletter"),
        ("2026-10-14", "Launched on Product Hunt"),
        ("2026-10-14", "  Price  change\n to $49 "),
        ("2026-10-31", "Halloween sale"),
    ]
    made = []
    for day, text in notes:
        response = await team.admin.post(url, json={"date": day, "text": text})
        assert response.status_code == 201, response.text
        made.append(response.json())
    assert (made[1]["date"], made[1]["text"]) == ("2026-10-14", "Launched on Product Hunt")
    assert made[2]["text"] == "Price change to $49"  # whitespace tidied to single spaces

    for member in (team.owner, team.admin, team.viewer):
        everything = await member.get(url)
        assert everything.status_code == 200, everything.text
        assert [n["date"] for n in everything.json()] == [
            "2026-10-01",
            "2026-10-14",
            "2026-10-14",
            "2026-10-31",
        ]
    middle = await team.viewer.get(url, params={"start_date": "2026-10-02", "end_date": "2026-10-14"})
    assert [n["text"] for n in middle.json()] == ["Launched on Product Hunt", "Price change to $49"]
    assert [n["date"] for n in (await team.viewer.get(url, params={"start_date": "2026-10-15"})).json()] == [
        "2026-10-31"
    ]
    assert [n["date"] for n in (await team.viewer.get(url, params={"end_date": "2026-10-13"})).json()] == [
        "2026-10-01"
    ]

    problem(await team.viewer.post(url, json={"date": "2026-10-20", "text": "Mine"}), 403)
    problem(await team.viewer.delete(f"{url}/{made[0]['id']}"), 403)
    problem(await team.stranger.get(url), 404)
    problem(await team.stranger.delete(f"{url}/{made[0]['id']}"), 404)

    assert (await team.owner.delete(f"{url}/{made[0]['id']}")).status_code == 204
    problem(await team.owner.delete(f"{url}/{made[0]['id']}"), 404)
    assert len((await team.viewer.get(url)).json()) == 3


async def test_a_note_of_another_site_cannot_be_deleted_through_this_one(client: Client) -> None:
    owner = await signup(client)
    site, other = await owner.create_site(), await owner.create_site()
    note = (
        await owner.post(f"/api/v1/sites/{other['id']}/annotations", json={"date": "2026-10-14", "text": "x"})
    ).json()

    problem(await owner.delete(f"/api/v1/sites/{site['id']}/annotations/{note['id']}"), 404)
    assert len((await owner.get(f"/api/v1/sites/{other['id']}/annotations")).json()) == 1
    assert (await owner.get(f"/api/v1/sites/{site['id']}/annotations")).json() == []


def _far_ahead() -> str:
    return (datetime.now(UTC).date() + timedelta(days=400)).isoformat()


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"date": "2026-10-14", "text": "x" * 201}, "text"),
        ({"date": "2026-10-14", "text": ""}, "text"),
        ({"date": "2026-10-14", "text": "   "}, "text"),
        ({"date": "14/10/2026", "text": "x"}, "date"),
        ({"date": "1999-12-31", "text": "x"}, "date"),
        ({"date": "far ahead", "text": "x"}, "date"),
        ({"text": "x"}, None),
        ({"date": "2026-10-14", "text": "x", "colour": "red"}, None),
    ],
)
async def test_a_bad_note_is_a_400_problem_naming_what_is_wrong(
    client: Client, body: dict[str, Any], key: str | None
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/annotations"
    if body.get("date") == "far ahead":
        body = {**body, "date": _far_ahead()}

    detail = problem(await owner.post(url, json=body), 400)

    assert detail["errors"], detail
    if key is not None:
        assert key in [e["key"] for e in detail["errors"]], detail
    assert (await owner.get(url)).json() == []


async def test_a_note_may_hold_200_characters_and_a_range_must_not_end_before_it_starts(
    client: Client,
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/annotations"
    today = date.today().isoformat()

    longest = await owner.post(url, json={"date": today, "text": "é" * 200})
    assert longest.status_code == 201, longest.text
    assert longest.json()["text"] == "é" * 200
    backwards = problem(
        await owner.get(url, params={"start_date": "2026-10-14", "end_date": "2026-10-13"}), 400
    )
    assert [e["key"] for e in backwards["errors"]] == ["end_date"]
    problem(await owner.get(url, params={"start_date": "yesterday"}), 400)
