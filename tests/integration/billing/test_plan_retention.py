"""Each plan's data retention (hosted mode): the nightly job deletes the traffic of an account's
sites older than its plan keeps (the trial's first plan: 365 days; growth: 730), payments stay,
and what remains adds up between the raw tables and the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.db.config import sqlalchemy_config
from datafast.domain.billing.retention import PLAN_RETENTION
from datafast.lib.adapters import Adapters
from tests.integration.accounts.conftest import signup
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    event_rows,
    generate,
    session_rows,
)
from tests.integration.billing.conftest import now, subscribed_account
from tests.integration.billing.stripe_api import StripeStandIn

Client = AsyncTestClient[Litestar]
DAY = 86400


async def _count(adapters: Adapters, sql: str, site: str) -> int:
    result = await adapters.event_store.query(sql, parameters={"s": site})
    return int(result.result_rows[0][0])


PAGEVIEWS = "SELECT countIf(event_type = 'pageview') FROM events WHERE website_id = {s:UUID}"
ROLLED = "SELECT sum(pageviews) FROM events_daily WHERE website_id = {s:UUID} AND dimension = 'page'"
VISITS = "SELECT sum(sign) FROM sessions WHERE website_id = {s:UUID}"


async def test_each_plan_keeps_its_days_of_traffic(
    client: Client, adapters: Adapters, stripe_api: StripeStandIn
) -> None:
    trial = await signup(client)  # on the first plan's trial: 365 days
    trial_site = (await trial.create_site())["id"]
    growth = await subscribed_account(client, stripe_api, plan="growth")  # 730 days
    t = now()
    created = growth.subscription_event(
        "customer.subscription.created", "price_growth_m", "active", t - 60, (t - 60, t + 30 * DAY)
    )
    assert (await growth.deliver(created)).status_code == 200
    assert (await growth.billing())["plan"]["name"] == "growth"
    growth_site = (await growth.owner.create_site())["id"]

    moment = datetime.now(UTC).replace(microsecond=0)
    ages = {"recent": (100, 95), "a_year": (400, 395), "two_years": (800, 795)}
    visits = {
        name: generate(seed, moment - timedelta(days=old), moment - timedelta(days=young), 8)
        for seed, (name, (old, young)) in enumerate(ages.items(), start=1)
    }
    pageviews = {
        name: sum(1 for v in vs for e in v.events if e.event_type == "pageview")
        for name, vs in visits.items()
    }
    for site in (trial_site, growth_site):
        everything = [v for vs in visits.values() for v in vs]
        await adapters.event_store.insert("events", event_rows(site, everything), EVENT_COLUMNS)
        await adapters.event_store.insert("sessions", session_rows(site, everything), SESSION_COLUMNS)
        assert await _count(adapters, PAGEVIEWS, site) == sum(pageviews.values())

    engine = sqlalchemy_config(adapters.settings).get_engine()
    saved = adapters.job_context.get("engine")
    adapters.job_context["engine"] = engine
    try:
        expired = await adapters.queue.apply(PLAN_RETENTION, timeout=120, now=moment.isoformat())
    finally:
        adapters.job_context["engine"] = saved
        await engine.dispose()
    assert {"365", "730"} <= set(expired)

    kept = {
        trial_site: pageviews["recent"],
        growth_site: pageviews["recent"] + pageviews["a_year"],
    }
    for site, expected in kept.items():
        assert await _count(adapters, PAGEVIEWS, site) == expected
        assert await _count(adapters, ROLLED, site) == expected  # the rollups agree with the rows
    assert await _count(adapters, VISITS, trial_site) == len(visits["recent"])
    assert await _count(adapters, VISITS, growth_site) == len(visits["recent"]) + len(visits["a_year"])
