"""Outgoing mail: SMTP, the Resend HTTP API, or the log when neither is configured.

Picked from settings by :func:`create_mailer`. A failed send raises :class:`MailError`;
callers decide whether that matters to the user (a password reset never says).
"""

from __future__ import annotations

import email.policy
import re
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx

from datafast.lib.queue import JobQueue
from datafast.log import get_logger
from datafast.settings import Settings

__all__ = ("LogMailer", "MailError", "Mailer", "QueuedMailer", "ResendMailer", "SmtpMailer", "create_mailer")

log = get_logger(__name__)


class MailError(Exception):
    pass


@runtime_checkable
class Mailer(Protocol):
    async def send(
        self, to: str, subject: str, text: str, html: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """``html``: an alternative to ``text`` (multipart/alternative); ``headers`` e.g. List-Unsubscribe."""
        ...


_POLICY = email.policy.SMTP.clone(max_line_length=998, cte_type="7bit")
"""Long headers (a List-Unsubscribe URL) stay plain up to RFC 5322's limit instead of becoming
encoded words that mail clients would not read as a URL."""

_TOKEN = re.compile(r"(token=)[^\s&#]+")


class LogMailer:
    """No mail service configured: the message goes to the log, its single-use links redacted.

    A link in a log is a credential anyone who can read the logs (a log shipper, a support
    session, a shared terminal) could use to reset a password or join a team. Operators without
    mail use ``datafast user reset-password`` / ``datafast user verify`` instead.
    """

    async def send(
        self, to: str, subject: str, text: str, html: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        log.warning(
            "mail not sent (set SMTP_URL or RESEND_API_KEY; without mail, use `datafast user "
            "reset-password` or `datafast user verify`); its text follows with links redacted",
            to=to,
            subject=subject,
            text=_TOKEN.sub(r"\1[redacted]", text),
        )


class SmtpMailer:
    """``smtp://user:pass@host:587`` (STARTTLS when offered, ``?starttls=require`` to insist) or ``smtps://host:465``."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        options = parse_qs(parts.query)
        self._implicit_tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._implicit_tls else 25)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._starttls: bool | None = True if options.get("starttls") == ["require"] else None
        self._sender = sender

    async def send(
        self, to: str, subject: str, text: str, html: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                # Flattened here: aiosmtplib would re-fold the headers at 78 columns.
                message.as_bytes(policy=_POLICY),
                sender=parseaddr(self._sender)[1],
                recipients=[to],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._implicit_tls,
                start_tls=None if self._implicit_tls else self._starttls,
                timeout=15,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP {self._host}:{self._port}: {exc}") from exc


class ResendMailer:
    """https://resend.com/docs/api-reference/emails/send-email"""

    def __init__(self, api_key: str, api_url: str, sender: str) -> None:
        self._api_key = api_key
        self._url = api_url.rstrip("/") + "/emails"
        self._sender = sender

    async def send(
        self, to: str, subject: str, text: str, html: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        body: dict[str, object] = {"from": self._sender, "to": [to], "subject": subject, "text": text}
        if html is not None:
            body["html"] = html
        if headers:
            body["headers"] = headers
        try:
            async with httpx.AsyncClient(timeout=15) as client:
                response = await client.post(
                    self._url, headers={"Authorization": f"Bearer {self._api_key}"}, json=body
                )
        except httpx.HTTPError as exc:
            raise MailError(f"Resend: {exc}") from exc
        if response.status_code >= 300:
            raise MailError(f"Resend answered {response.status_code}: {response.text[:200]}")


class QueuedMailer:
    """Scaled mode: a message becomes a ``send_mail`` job (SAQ, run by ``datafast worker`` with the
    configured mailer and retried when the send fails); returns once the job is queued."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue

    async def send(
        self, to: str, subject: str, text: str, html: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        try:
            await self._queue.enqueue(
                "send_mail", to=to, subject=subject, text=text, html=html, headers=headers
            )
        except Exception as exc:  # Valkey away: as a failed send
            raise MailError(f"mail not queued: {exc}") from exc


def create_mailer(settings: Settings) -> Mailer:
    accounts = settings.accounts
    if accounts.smtp_url:
        return SmtpMailer(accounts.smtp_url, accounts.mail_from)
    if accounts.resend_api_key:
        return ResendMailer(accounts.resend_api_key, accounts.resend_api_url, accounts.mail_from)
    return LogMailer()
