"""Journeys: the most common paths from the entry page, checked against paths computed here from the
generated visits (both modes)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from datafast.lib.adapters import Adapters
from tests.integration.analytics.test_api import Client, site_with_traffic, week
from tests.integration.analytics.traffic import Truth


def expected(truth: Truth, steps: int, goal: str | None) -> tuple[int, list[dict[str, Any]]]:
    start, end = week(truth)
    counted: Counter[tuple[tuple[str, ...], bool]] = Counter()
    converted: Counter[tuple[tuple[str, ...], bool]] = Counter()
    for visit in truth.visits:
        events = sorted(
            (e for e in visit.events if start <= e.timestamp < end), key=lambda e: (e.timestamp, e.event_id)
        )
        if goal:
            done = next((i for i, e in enumerate(events) if e.goal_name == goal), None)
            if done is None:
                continue
            events = events[:done]
        else:
            done = next((i for i, e in enumerate(events) if e.event_type in ("goal", "purchase")), None)
        pages: list[str] = []
        for e in events:
            if e.event_type == "pageview" and (not pages or pages[-1] != e.pathname):
                pages.append(e.pathname)
        if not pages:
            continue
        key = (tuple(pages[:steps]), len(pages) > steps)
        counted[key] += 1
        converted[key] += done is not None
    rows = [
        {"pages": list(path), "more": more, "visits": n, "conversions": converted[(path, more)]}
        for (path, more), n in counted.items()
    ]
    rows.sort(key=lambda r: (-r["visits"], -r["conversions"], r["pages"], r["more"]))
    return sum(counted.values()), rows


async def journeys(client: Client, owner: Any, site_id: str, **params: Any) -> dict[str, Any]:
    answer = await owner.get(
        f"/api/v1/sites/{site_id}/journeys", params={"period": "7d", "limit": 1000, **params}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_paths_from_entry_and_to_a_goal_match_the_visits(client: Client, adapters: Adapters) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=60)

    for steps, goal in ((4, None), (2, None), (3, "signup")):
        total, rows = expected(truth, steps, goal)
        assert rows, "the generated traffic has paths"
        body = await journeys(client, owner, site["id"], steps=steps, **({"goal": goal} if goal else {}))
        got = body["paths"]
        assert [r for r in got if r not in rows] == [r for r in rows if r not in got] == [], (steps, goal)
        assert (body["visits"], got, body["has_more"]) == (total, rows, False), (steps, goal)

    first = await journeys(client, owner, site["id"], limit=3)
    assert first["paths"] == expected(truth, 4, None)[1][:3]
    assert first["has_more"] is True


async def test_bad_journey_parameters_are_400_problems(client: Client, adapters: Adapters) -> None:
    owner, site, _ = await site_with_traffic(client, adapters, visitors=2)
    for params in ({"steps": 1}, {"steps": 9}, {"steps": "x"}, {"goal": "g" * 101}):
        answer = await owner.get(f"/api/v1/sites/{site['id']}/journeys", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
