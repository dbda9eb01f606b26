"""Fixtures for the privacy tests: the revenue tests' shop (traffic through /track, payments
through the Payments API), with a mailbox for inviting team members."""

from tests.integration.accounts.conftest import mailbox, settings
from tests.integration.revenue.conftest import client, currency, env, owner, shop

__all__ = ("client", "currency", "env", "mailbox", "owner", "settings", "shop")
