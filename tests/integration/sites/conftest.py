"""Fixtures for the sites tests: the accounts tests' mail server, so members join by invitation."""

from __future__ import annotations

from tests.integration.accounts.conftest import client, mailbox, settings

__all__ = ("client", "mailbox", "settings")
