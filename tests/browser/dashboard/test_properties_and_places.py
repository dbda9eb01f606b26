"""Custom properties and region/city tabs in Chromium: the panels show what the Stats API answers.

This module's DataFast reads a city database (``GEOIP_DATABASE``, a GeoLite2-City file written by
the test) so visitors from London, Edinburgh and Milton get a region and a city.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import (
    RESEND_KEY,
    Account,
    Errors,
    Hit,
    Outbox,
    shot,
    track,
    unique_host,
)
from tests.helpers import city_record, write_city_mmdb

pytestmark = pytest.mark.browser

LONDON, EDINBURGH, MILTON = "81.2.69.10", "2a02:c7f::1", "216.160.83.57"


@pytest.fixture(scope="module")
def datafast_extra_env(outbox: Outbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cities = write_city_mmdb(
        tmp_path_factory.mktemp("geo") / "city.mmdb",
        {
            "81.2.69.0/24": city_record("GB", "ENG", "London"),
            "2a02:c7f::/32": city_record("GB", "SCT", "Edinburgh"),
            "216.160.83.56/29": city_record("US", "WA", "Milton"),
        },
    )
    return {
        "RESEND_API_KEY": RESEND_KEY,
        "RESEND_API_URL": outbox.url,
        "SIGNUP_LIMIT_PER_IP": "10000",
        "SIGNUP_LIMIT_PER_DOMAIN": "10000",
        "GEOIP_DATABASE": str(Path(cities)),
    }


def api_rows(owner: Account, site_id: str, dimension: str, metrics: str) -> dict[str, dict[str, Any]]:
    answer = owner.http.get(
        f"/api/v1/sites/{site_id}/breakdown",
        params={"period": "today", "dimension": dimension, "metrics": metrics},
    )
    assert answer.status_code == 200, answer.text
    return {r["dimensions"][0]: r["metrics"] for r in answer.json()["rows"]}


def shown(panel: Locator, metrics: list[str]) -> dict[str, dict[str, str]]:
    rows = panel.get_by_test_id("row")
    return {
        str(rows.nth(i).get_attribute("data-value")): {
            m: rows.nth(i).locator(f'[data-metric="{m}"]').inner_text() for m in metrics
        }
        for i in range(rows.count())
    }


def test_property_values_and_cities_show_the_stats_api_numbers(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("props")
    host = unique_host("prp")
    site_id = owner.add_site(host)
    signup = {"event_type": "goal", "goal_name": "signup"}
    track(
        datafast,
        site_id,
        host,
        [
            Hit("ldn-1", "/"),
            Hit("ldn-1", "/signup", **signup, props={"plan": "pro", "referrer_code": "ph"}),
            Hit("ldn-2", "/"),
            Hit("ldn-2", "/signup", **signup, props={"plan": "free"}),
            # identify's traits describe a person: not a custom property of the site's events.
            Hit("ldn-2", "/welcome", event_type="identify", props={"user_id": "u-2", "name": "Bo"}),
        ],
        ip=LONDON,
    )
    track(
        datafast,
        site_id,
        host,
        [Hit("edi-1", "/"), Hit("edi-1", "/signup", **signup, props={"plan": "pro"})],
        ip=EDINBURGH,
    )
    track(datafast, site_id, host, [Hit("mil-1", "/pricing")], ip=MILTON)

    keys = owner.http.get(f"/api/v1/sites/{site_id}/properties", params={"period": "today"}).json()
    assert [(k["key"], k["events"]) for k in keys["keys"]] == [("plan", 3), ("referrer_code", 1)]
    plans = api_rows(owner, site_id, "prop:plan", "visitors,conversions,revenue")
    # Events without the property: "(none)", like Plausible's.
    assert {k: (v["visitors"], v["conversions"]) for k, v in plans.items()} == {
        "pro": (2, 2),
        "free": (1, 1),
        "": (4, 0),
    }
    cities = api_rows(owner, site_id, "city", "visitors,revenue")
    assert {k: v["visitors"] for k, v in cities.items()} == {"London": 2, "Edinburgh": 1, "Milton": 1}
    regions = api_rows(owner, site_id, "region", "visitors,revenue")
    assert {k: v["visitors"] for k, v in regions.items()} == {"GB-ENG": 2, "GB-SCT": 1, "US-WA": 1}

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}?period=today")

        props = page.get_by_test_id("panel-properties")
        expect(props.get_by_test_id("property-key")).to_have_value("plan")
        expect(props.get_by_test_id("row")).to_have_count(3)
        assert shown(props, ["visitors", "conversions"]) == {
            k: {"visitors": str(v["visitors"]), "conversions": str(v["conversions"])}
            for k, v in plans.items()
        }
        props.get_by_test_id("property-key").select_option("referrer_code")
        expect(props.get_by_test_id("row").first).to_have_attribute("data-value", "")
        expect(props.locator('[data-testid="row"][data-value="ph"] [data-metric="visitors"]')).to_have_text(
            "1"
        )

        places = page.get_by_test_id("panel-countries")
        # The countries' globe (or flat map) shows on the Countries tab only.
        world = places.locator('[data-testid="world-map"], [data-testid="globe"]')
        expect(world).to_have_count(1)
        places.get_by_test_id("tab-city").click()
        expect(places.get_by_test_id("row")).to_have_count(3)
        assert shown(places, ["visitors"]) == {k: {"visitors": str(v["visitors"])} for k, v in cities.items()}
        expect(world).to_have_count(0)
        places.get_by_test_id("tab-region").click()
        expect(places.get_by_test_id("row").first).to_have_attribute("data-value", "GB-ENG")
        assert shown(places, ["visitors"]) == {
            k: {"visitors": str(v["visitors"])} for k, v in regions.items()
        }
        shot(page, "dashboard-properties-regions-desktop-light")

        # A value is a filter like any other: the property's rows narrow the whole dashboard.
        places.get_by_test_id("tab-city").click()
        places.locator('[data-testid="row"][data-value="London"] button').click()
        expect(places.get_by_test_id("row")).to_have_count(1)
        expect(props.get_by_test_id("property-key")).to_have_value("referrer_code")  # kept
        props.get_by_test_id("property-key").select_option("plan")
        expect(props.locator('[data-testid="row"][data-value="free"] [data-metric="visitors"]')).to_have_text(
            "1"
        )
        expect(props.locator('[data-testid="row"][data-value="pro"] [data-metric="visitors"]')).to_have_text(
            "1"
        )
    finally:
        context.close()
