"""Email verification and password reset: single-use, expiring tokens delivered by SMTP
(a local aiosmtpd server), the Resend HTTP API (a local stand-in) or the log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.app import create_app
from datafast.db.models import UserToken
from datafast.jobs import JOBS
from datafast.lib.adapters import create_adapters
from datafast.lib.mail import LogMailer, ResendMailer, SmtpMailer, create_mailer
from tests.conftest import SettingsFactory
from tests.helpers import running_worker
from tests.integration.accounts.conftest import PASSWORD, Client, Mailbox, login, signup, unique_email


async def test_signup_mails_a_verification_link_that_works_once(client: Client, mailbox: Mailbox) -> None:
    user = await signup(client, verified=False)

    message = await mailbox.wait_for(user.email, "Confirm your email")
    assert message["From"] == "DataFast <noreply@example.test>"
    token = await mailbox.token(user.email, "Confirm your email")

    first = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert first.status_code == 200, first.text
    assert first.json()["email_verified"] is True
    assert (await user.get("/api/v1/auth/me")).json()["user"]["email_verified"] is True

    again = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 410
    assert again.headers["content-type"] == "application/problem+json"


async def test_verification_can_be_mailed_again(client: Client, mailbox: Mailbox) -> None:
    user = await signup(client, verified=False)
    await mailbox.wait_for(user.email, "Confirm your email")

    assert (await user.post("/api/v1/auth/verify-email/resend")).status_code == 202

    for _ in range(500):
        sent = [m for m in mailbox.messages if m["To"] == user.email]
        if len(sent) >= 2:
            break
        await asyncio.sleep(0.02)
    assert len(sent) == 2


async def test_password_reset_sets_a_new_password_and_ends_sessions(client: Client, mailbox: Mailbox) -> None:
    user = await signup(client)

    asked = await client.post("/api/v1/auth/password-reset", json={"email": user.email.upper()})
    assert asked.status_code == 202
    token = await mailbox.token(user.email, "Reset your DataFast password")

    weak = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 400
    done = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "a new secret 2"}
    )
    assert done.status_code == 204, done.text

    assert (await user.get("/api/v1/auth/me")).status_code == 401  # signed out everywhere
    old = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert old.status_code == 401
    await login(client, user.email, "a new secret 2")
    reused = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "another one 3"}
    )
    assert reused.status_code == 410


async def test_password_reset_for_an_unknown_email_looks_the_same_and_mails_nothing(
    client: Client, mailbox: Mailbox
) -> None:
    email = unique_email()
    response = await client.post("/api/v1/auth/password-reset", json={"email": email})

    assert response.status_code == 202
    with pytest.raises(AssertionError):
        await mailbox.wait_for(email, "Reset", timeout=0.5)


async def test_expired_reset_token_is_refused(
    client: Client, mailbox: Mailbox, db_session: AsyncSession
) -> None:
    user = await signup(client)
    await client.post("/api/v1/auth/password-reset", json={"email": user.email})
    token = await mailbox.token(user.email, "Reset your DataFast password")
    await db_session.execute(update(UserToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await db_session.commit()

    response = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "a new secret 2"}
    )

    assert response.status_code == 410


class _Resend:
    """A stand-in for https://api.resend.com: POST /emails with a Bearer key."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.auth.append(self.headers.get("Authorization", ""))
                if self.path != "/emails" or self.headers.get("Authorization") != "Bearer re_test_key":
                    self.send_response(401)
                    self.end_headers()
                    return
                outer.received.append(body)
                data = json.dumps({"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def resend() -> Iterator[_Resend]:
    server = _Resend()
    yield server
    server.stop()


async def test_mail_goes_through_the_resend_api_when_configured(
    make_settings: SettingsFactory, resend: _Resend
) -> None:
    settings = make_settings(
        RESEND_API_KEY="re_test_key", RESEND_API_URL=resend.url, MAIL_FROM="a@example.test"
    )
    assert isinstance(create_mailer(settings), ResendMailer)
    email = unique_email()
    adapters = await create_adapters(settings, JOBS)  # scaled mode: the worker sends the mail
    try:
        async with (
            AsyncTestClient(create_app(settings)) as client,
            running_worker(adapters) if adapters.valkey else contextlib.nullcontext(),
        ):
            response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert response.status_code == 201
            for _ in range(200):
                if resend.received:
                    break
                await asyncio.sleep(0.02)
    finally:
        await adapters.close()

    assert resend.received, resend.auth
    sent = resend.received[0]
    assert sent["to"] == [email]
    assert sent["from"] == "a@example.test"
    assert "verify-email?token=" in sent["text"]


async def test_without_smtp_or_resend_mail_goes_to_the_log(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    assert isinstance(create_mailer(settings), LogMailer)
    assert isinstance(create_mailer(make_settings(SMTP_URL="smtp://u:p@mail.example.com:587")), SmtpMailer)
