"""Goals set up in a site's settings apply at query time: pageview goals (path patterns) and
event goals (custom events, or a tracker goal renamed), in the goal breakdown, goal filters,
funnels and over HTTP. The truth is computed here from the generated visits."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from datafast.domain.analytics.catalog import GoalDefinition
from datafast.domain.analytics.schemas import DateRange, Filter, FunnelRead, FunnelStep, QueryRequest
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.lib.adapters import Adapters
from tests.integration.analytics.conftest import TIMEZONE, Dataset
from tests.integration.analytics.test_api import Client, site_with_traffic
from tests.integration.analytics.traffic import Event, Visit, local_range

GOALS = (
    GoalDefinition("Pricing", "pageview", "/pricing"),
    GoalDefinition("Blog", "pageview", "/blog/*"),
    GoalDefinition("Signed up", "event", "signup"),  # the tracker's "signup" goal, renamed
)
FIRST, LAST = "2026-10-24", "2026-10-26"


def goals_of(event: Event) -> set[str]:
    """What each definition means, written out independently of the SQL."""
    names = set()
    if event.event_type == "pageview":
        if event.pathname == "/pricing":
            names.add("Pricing")
        if event.pathname.startswith("/blog/"):
            names.add("Blog")
    elif event.goal_name == "signup":
        names.add("Signed up")
    elif event.goal_name:
        names.add(event.goal_name)
    return names


def completions(dataset: Dataset) -> list[tuple[Visit, Event, set[str]]]:
    start, end = local_range(TIMEZONE, FIRST, LAST)
    return [
        (visit, event, goals_of(event))
        for visit in dataset.visits
        for event in visit.events
        if start <= event.timestamp < end and goals_of(event)
    ]


def site_with_goals(dataset: Dataset) -> SiteContext:
    return SiteContext(dataset.site.id, dataset.site.timezone, dataset.site.currency, GOALS)


RANGE = DateRange(date.fromisoformat(FIRST), date.fromisoformat(LAST))


async def test_the_goal_breakdown_lists_defined_goals_with_their_completions(
    stats: StatsService, dataset: Dataset
) -> None:
    result = await stats.query(
        site_with_goals(dataset),
        QueryRequest(metrics=["visitors", "events", "conversions"], dimensions=["goal"], date_range=RANGE),
    )

    expected: dict[str, dict[str, Any]] = {}
    for visit, _, names in completions(dataset):
        for name in names:
            row = expected.setdefault(name, {"visitors": set(), "events": 0})
            row["visitors"].add(visit.visitor_id)
            row["events"] += 1
    assert result.rows is not None
    got = {row.dimensions[0]: row.metrics for row in result.rows}
    assert set(got) == {"Pricing", "Blog", "Signed up", "Newsletter Signup"}  # "signup" is now "Signed up"
    assert got == {
        name: {"visitors": len(row["visitors"]), "events": row["events"], "conversions": len(row["visitors"])}
        for name, row in expected.items()
    }


async def test_goal_filters_match_any_goal_an_event_completes(stats: StatsService, dataset: Dataset) -> None:
    cases = [
        (Filter(dimension="goal", values=["Blog"]), lambda names: "Blog" in names),
        (
            Filter(dimension="goal", operator="contains", values=["sign"]),
            lambda names: any("sign" in n.lower() for n in names),
        ),
        (
            Filter(dimension="goal", values=["Pricing", "Signed up"]),
            lambda names: bool(names & {"Pricing", "Signed up"}),
        ),
    ]
    for goal_filter, keeps in cases:
        result = await stats.query(
            site_with_goals(dataset),
            QueryRequest(metrics=["visitors", "events"], filters=[goal_filter], date_range=RANGE),
        )
        kept = [(visit, event) for visit, event, names in completions(dataset) if keeps(names)]
        assert kept, goal_filter
        assert result.totals == {"visitors": len({v.visitor_id for v, _ in kept}), "events": len(kept)}


async def test_a_funnel_step_can_be_a_defined_goal(stats: StatsService, dataset: Dataset) -> None:
    funnel = FunnelRead(
        id="00000000-0000-0000-0000-000000000001",
        website_id=dataset.site.id,
        name="blog readers",
        steps=[FunnelStep(kind="goal", value="Blog")],
        window_seconds=86400,
        created_at=datetime(2026, 1, 1),
    )
    result = await stats.funnel(site_with_goals(dataset), funnel, RANGE, [])
    readers = {visit.visitor_id for visit, _, names in completions(dataset) if "Blog" in names}
    assert [step.visitors for step in result.steps] == [len(readers)]


async def test_goals_set_up_over_http_reach_the_goals_report(client: Client, adapters: Adapters) -> None:
    owner, site, truth = await site_with_traffic(client, adapters)
    response = await owner.post(
        f"/api/v1/sites/{site['id']}/goals", json={"name": "Saw pricing", "kind": "pageview", "path": "/pri*"}
    )
    assert response.status_code == 201, response.text

    report = await owner.get(f"/api/v1/sites/{site['id']}/goals/conversions?period=7d")

    assert report.status_code == 200, report.text
    rows = {row["dimensions"][0]: row["metrics"] for row in report.json()["rows"]}
    pattern = re.compile(r"^/pri.*$")
    visitors = {
        v.visitor_id
        for v in truth.visits
        for e in v.events
        if e.event_type == "pageview" and pattern.match(e.pathname)
    }
    assert visitors
    assert rows["Saw pricing"]["conversions"] == len(visitors)
