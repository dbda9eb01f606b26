"""A site with a team (owner, admin, viewer) and a stranger, each a separate signed-in browser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.integration.accounts.conftest import Browser, Client, Mailbox, signup


@dataclass
class Team:
    site: dict[str, Any]
    owner: Browser
    admin: Browser
    viewer: Browser
    stranger: Browser

    @property
    def base(self) -> str:
        return f"/api/v1/sites/{self.site['id']}"


async def join(owner: Browser, site_id: str, member: Browser, role: str, mailbox: Mailbox) -> None:
    """``member`` joins as ``role`` the way people do: the mailed invitation, accepted."""
    invited = await owner.post(
        f"/api/v1/sites/{site_id}/invitations", json={"email": member.email, "role": role}
    )
    assert invited.status_code == 201, invited.text
    token = await mailbox.token(member.email, "You are invited")
    accepted = await member.post("/api/v1/invitations/accept", json={"token": token})
    assert accepted.status_code == 200, accepted.text
    mailbox.messages.clear()


async def make_team(client: Client, mailbox: Mailbox) -> Team:
    owner, admin, viewer, stranger = [await signup(client) for _ in range(4)]
    site = await owner.create_site()
    await join(owner, site["id"], admin, "admin", mailbox)
    await join(owner, site["id"], viewer, "viewer", mailbox)
    return Team(site, owner, admin, viewer, stranger)
