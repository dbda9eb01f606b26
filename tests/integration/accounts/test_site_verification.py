"""Domain ownership: the first to add a domain does not own it; the site that proves control of the
domain (``/.well-known/datafast.txt`` with its token) does, and then blocks new copies."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from datafast.settings import Settings
from tests.conftest import SettingsFactory
from tests.integration.accounts.conftest import Client, Mailbox, signup


class ProofServer:
    """Stands in for the customers' web servers: ``/<domain>/datafast.txt`` → (status, body, headers)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers = files.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, domain: str, body: str, status: int = 200, **headers: str) -> None:
        self.files[f"/{domain}/datafast.txt"] = (status, body.encode(), headers)


@pytest.fixture
def proofs() -> Iterator[ProofServer]:
    server = ProofServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def settings(make_settings: SettingsFactory, mailbox: Mailbox, proofs: ProofServer) -> Settings:
    return make_settings(
        SMTP_URL=f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        SITE_VERIFICATION_URL=f"http://127.0.0.1:{proofs.port}/{{domain}}/datafast.txt",
        SITE_VERIFICATION_ALLOW_PRIVATE="true",
    )


def _domain() -> str:
    return f"d{uuid.uuid4().hex[:10]}.example.com"


async def test_a_squatter_does_not_block_the_owner_who_then_proves_the_domain(
    client: Client, proofs: ProofServer
) -> None:
    domain = _domain()
    squatter, owner, latecomer = await signup(client), await signup(client), await signup(client)
    squatted = await squatter.create_site(domain)
    assert squatted["verified"] is False

    mine = await owner.create_site(domain)  # the first registration does not own the domain
    how = (await owner.get(f"/api/v1/sites/{mine['id']}/verification")).json()
    assert how["verified"] is False
    assert how["url"].endswith(f"/{domain}/datafast.txt")
    not_yet = await owner.post(f"/api/v1/sites/{mine['id']}/verification")
    assert not_yet.status_code == 400
    assert not_yet.headers["content-type"] == "application/problem+json"

    proofs.publish(domain, f"# DataFast\n{how['token']}\n")
    proved = await owner.post(f"/api/v1/sites/{mine['id']}/verification")
    assert proved.status_code == 200, proved.text
    assert proved.json()["verified"] is True
    assert (await owner.get(f"/api/v1/sites/{mine['id']}")).json()["verified"] is True

    # The squatter cannot prove it (the file carries the owner's token), and nobody can add it again.
    assert (await squatter.post(f"/api/v1/sites/{squatted['id']}/verification")).status_code == 400
    again = await latecomer.post("/api/v1/sites", json={"domain": domain})
    assert again.status_code == 409
    moved = await squatter.patch(f"/api/v1/sites/{squatted['id']}", json={"domain": "other-" + domain})
    assert moved.status_code == 200
    back = await squatter.patch(f"/api/v1/sites/{squatted['id']}", json={"domain": domain})
    assert back.status_code == 409


async def test_changing_the_domain_makes_the_site_unverified(client: Client, proofs: ProofServer) -> None:
    domain = _domain()
    owner = await signup(client)
    site = await owner.create_site(domain)
    token = (await owner.get(f"/api/v1/sites/{site['id']}/verification")).json()["token"]
    proofs.publish(domain, token)
    assert (await owner.post(f"/api/v1/sites/{site['id']}/verification")).json()["verified"] is True

    changed = await owner.patch(f"/api/v1/sites/{site['id']}", json={"domain": "new-" + domain})

    assert changed.json()["verified"] is False
    # the old domain is free again
    assert (await (await signup(client)).post("/api/v1/sites", json={"domain": domain})).status_code == 201


async def test_the_proof_fetch_follows_no_redirect_and_reads_a_bounded_body(
    client: Client, proofs: ProofServer
) -> None:
    domain = _domain()
    owner = await signup(client)
    site = await owner.create_site(domain)
    token = (await owner.get(f"/api/v1/sites/{site['id']}/verification")).json()["token"]
    url = f"/api/v1/sites/{site['id']}/verification"

    proofs.publish("elsewhere", token)
    proofs.publish(domain, "", status=302, location=f"http://127.0.0.1:{proofs.port}/elsewhere/datafast.txt")
    assert (await owner.post(url)).status_code == 400
    proofs.publish(domain, "x" * 10_000 + token)  # the token past the first 4 KiB is not read
    assert (await owner.post(url)).status_code == 400
    viewer_cannot = await (await signup(client)).post(url)
    assert viewer_cannot.status_code == 404


async def test_private_addresses_are_never_fetched_by_default(make_settings: SettingsFactory) -> None:
    from litestar.testing import AsyncTestClient

    from datafast.app import create_app

    settings = make_settings(SITE_VERIFICATION_URL="http://127.0.0.1:9/{domain}/datafast.txt")
    async with AsyncTestClient(create_app(settings)) as client:
        owner = await signup(client)
        site = await owner.create_site(_domain())
        response = await owner.post(f"/api/v1/sites/{site['id']}/verification")

    assert response.status_code == 400
    assert "private" in response.json()["detail"]
