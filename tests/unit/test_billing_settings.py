"""Hosted-mode settings: BILLING=off by default; BILLING=stripe needs its keys and plans."""

from __future__ import annotations

import json

import pytest

from datafast.settings import Plan, SettingsError, load_settings

PLANS = json.dumps([{"name": "starter", "monthly_price": "price_1", "events": 500, "sites": 2, "seats": 3}])
STRIPE = {"BILLING": "stripe", "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}


def test_billing_is_off_by_default() -> None:
    billing = load_settings({}, env_file=None).billing
    assert billing.mode == "off"
    assert not billing.enabled
    assert billing.plans == ()


def test_stripe_billing_reads_keys_plans_and_the_api_base() -> None:
    billing = load_settings(
        {
            **STRIPE,
            "BILLING_PLANS": PLANS,
            "STRIPE_API_BASE": "http://127.0.0.1:9999/",
            "BILLING_GRACE_DAYS": "3",
        },
        env_file=None,
    ).billing
    assert billing.enabled
    assert billing.stripe_api_base == "http://127.0.0.1:9999"
    assert billing.plans == (Plan(name="starter", monthly_price="price_1", events=500, sites=2, seats=3),)
    assert (billing.trial_days, billing.grace_days) == (14, 3)
    assert billing.plan_for_price("price_1") == billing.plans[0]
    assert billing.plan_for_price("price_other") is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"BILLING": "paddle"}, "BILLING"),
        ({**STRIPE, "STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"),
        ({**STRIPE, "STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        (STRIPE, "BILLING_PLANS"),
        ({**STRIPE, "BILLING_PLANS": "[]"}, "BILLING_PLANS"),
        ({**STRIPE, "BILLING_PLANS": '[{"name": "x"}]'}, "BILLING_PLANS"),
        ({**STRIPE, "BILLING_PLANS": '[{"name": "x", "monthly_price": "p", "events": -1}]'}, "BILLING_PLANS"),
        ({**STRIPE, "BILLING_PLANS": PLANS[:-1] + "," + PLANS[1:]}, "BILLING_PLANS"),
        ({**STRIPE, "BILLING_PLANS": PLANS, "STRIPE_API_BASE": "ftp://x"}, "STRIPE_API_BASE"),
    ],
)
def test_bad_billing_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ, env_file=None)
