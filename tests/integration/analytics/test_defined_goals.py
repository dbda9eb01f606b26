"""Goals defined in a site's settings are counted by what they match in ``/goals/conversions``:
a pageview of a path (``*`` wildcards) or a goal/custom event name; tracker goals no defined goal
covers are listed after them. Expected counts come from the generated traffic (``Truth``)."""

from __future__ import annotations

from collections.abc import Callable

from datafast.lib.adapters import Adapters
from tests.integration.analytics.test_api import Client, site_with_traffic, week
from tests.integration.analytics.traffic import Event


async def test_defined_goals_count_their_converting_visitors_and_cover_the_tracker_goal_they_name(
    client: Client, adapters: Adapters
) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=60)
    base = f"/api/v1/sites/{site['id']}"
    for body in (
        {"name": "Pricing or docs", "kind": "pageview", "path": "/*o*s"},
        {"name": "Blog", "kind": "pageview", "path": "/blog/*"},
        {"name": "Signed up", "kind": "event", "event_name": "signup"},
    ):
        made = await owner.post(f"{base}/goals", json=body)
        assert made.status_code == 201, made.text

    answer = await owner.get(f"{base}/goals/conversions?period=7d")
    assert answer.status_code == 200, answer.text

    start, end = week(truth)
    events = [(v.visitor_id, e) for v in truth.visits for e in v.events if start <= e.timestamp < end]

    def converted(matches: Callable[[Event], bool]) -> tuple[int, int]:
        hits = [(who, e) for who, e in events if matches(e)]
        return len({who for who, _ in hits}), len(hits)

    def blog(e: Event) -> bool:
        return e.event_type == "pageview" and e.pathname.startswith("/blog/")

    def newsletter(e: Event) -> bool:
        return e.goal_name == "Newsletter Signup"

    expected = {
        # "/*o*s" matches /docs but not /pricing ("o" then "s" at the end): * is any characters.
        "Pricing or docs": converted(lambda e: e.event_type == "pageview" and e.pathname == "/docs"),
        "Blog": converted(blog),
        "Signed up": converted(lambda e: e.event_type == "goal" and e.goal_name == "signup"),
        # Not defined in settings: still listed under the tracker's name. "signup" is not listed
        # again: the "Signed up" goal counts it.
        "Newsletter Signup": converted(newsletter),
    }
    assert all(visitors for visitors, _ in expected.values()), expected  # the traffic has each
    rows = {r["dimensions"][0]: r["metrics"] for r in answer.json()["rows"]}
    assert {name: (m["conversions"], m["events"]) for name, m in rows.items()} == expected
    visitors = len({who for who, _ in events})
    assert rows["Blog"]["conversion_rate"] == expected["Blog"][0] / visitors

    # goal_name= picks one goal, defined or not.
    one = await owner.get(f"{base}/goals/conversions?period=7d&goal_name=Blog")
    assert [r["dimensions"][0] for r in one.json()["rows"]] == ["Blog"]

    # A goal filter (the dashboard's click on a goal row) names a defined goal by its name too,
    # alone or with a tracker goal.
    filtered = await owner.get(f"{base}/metrics?period=7d&metrics=visitors&filter=goal==Blog")
    assert filtered.status_code == 200, filtered.text
    assert filtered.json()["totals"]["visitors"] == expected["Blog"][0]
    both = await owner.get(f"{base}/metrics?period=7d&metrics=visitors&filter=goal==Blog|Newsletter Signup")
    assert both.json()["totals"]["visitors"] == len({who for who, e in events if blog(e) or newsletter(e)})
    others = await owner.get(f"{base}/metrics?period=7d&metrics=visitors&filter=goal!=Blog")
    assert others.json()["totals"]["visitors"] == len({who for who, e in events if not blog(e)})
