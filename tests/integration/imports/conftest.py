"""Fixtures for the imports tests: the revenue tests' app client and signed-in owner with a site."""

from tests.integration.accounts.conftest import mailbox, settings
from tests.integration.revenue.conftest import client, currency, env, owner, shop

__all__ = ("client", "currency", "env", "mailbox", "owner", "settings", "shop")
