"""What the dashboard's browser tests share: a mail outbox that speaks Resend's HTTP API, accounts
made through the real API and handed to Chromium as cookies, and screenshots.

DataFast sends its mail through ``RESEND_API_URL`` (README "Settings"): here a local stand-in for
https://api.resend.com that accepts ``POST /emails`` with the configured bearer key and keeps the
messages, so a test reads the link DataFast mailed exactly as a person would.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import DataFast
from tests.helpers import CHROME_MAC

SCREENSHOTS = Path(__file__).resolve().parents[2] / "_artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
RESEND_KEY = "re_browser_test_key"
PASSWORD = "correct-horse-9"


# --- mail -----------------------------------------------------------------------------------------


@dataclass
class Mail:
    to: list[str]
    sender: str
    subject: str
    text: str

    def link(self, base_url: str) -> str:
        match = re.search(re.escape(base_url) + r"/\S+", self.text)
        assert match, f"no link to {base_url} in: {self.text!r}"
        return match.group(0)


@dataclass
class Outbox:
    """A stand-in for Resend: ``POST /emails`` with ``Authorization: Bearer <key>``."""

    url: str = ""
    mails: list[Mail] = field(default_factory=list)
    refused: int = 0

    def wait_for(self, to: str, subject: str, timeout: float = 10) -> Mail:
        """The newest mail to ``to`` whose subject contains ``subject`` (mail leaves after the answer)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.mails if to in m.to and subject in m.subject]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, f"no mail {subject!r} to {to}; outbox: {self.mails}"
            time.sleep(0.05)

    def count(self, to: str, subject: str) -> int:
        return sum(1 for m in self.mails if to in m.to and subject in m.subject)


@pytest.fixture(scope="module")
def outbox() -> Iterator[Outbox]:
    box = Outbox()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/emails" or self.headers.get("Authorization") != f"Bearer {RESEND_KEY}":
                box.refused += 1
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            box.mails.append(Mail(body["to"], body["from"], body["subject"], body["text"]))
            data = json.dumps({"id": str(uuid.uuid4())}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="resend-standin", daemon=True).start()
    yield box
    server.shutdown()
    server.server_close()
    assert box.refused == 0, "DataFast called the mail API without the configured key"


def mail_env(outbox: Outbox) -> dict[str, str]:
    """DataFast's settings for mailing through ``outbox`` (a module adds its own to them)."""
    return {
        "RESEND_API_KEY": RESEND_KEY,
        "RESEND_API_URL": outbox.url,
        "MAIL_FROM": "DataFast <noreply@datafast.test>",
        # Every account of these tests signs up from one address at one domain.
        "SIGNUP_LIMIT_PER_IP": "10000",
        "SIGNUP_LIMIT_PER_DOMAIN": "10000",
    }


@pytest.fixture(scope="module")
def datafast_extra_env(outbox: Outbox) -> dict[str, str]:
    return mail_env(outbox)


# --- accounts -------------------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    password: str
    http: httpx.Client
    """Signed in through the API: its cookies are the session."""
    contexts: list[BrowserContext] = field(default_factory=list)
    """Browsers opened as this account: closed when the test ends, so no page of it still polls
    the server when the module's server stops."""

    @property
    def csrf(self) -> dict[str, str]:
        return {"x-csrf-token": self.http.cookies["datafast_csrf"]}

    def add_site(self, domain: str, timezone: str = "UTC") -> str:
        made = self.http.post(
            "/api/v1/sites", json={"domain": domain, "timezone": timezone}, headers=self.csrf
        )
        assert made.status_code == 201, made.text
        site_id: str = made.json()["id"]
        return site_id

    def context(self, browser: Browser, **options: Any) -> BrowserContext:
        """A browser signed in as this account (its session cookies)."""
        context = browser.new_context(user_agent=CHROME_MAC, **{"viewport": DESKTOP, **options})
        url = str(self.http.base_url)
        context.add_cookies(
            [{"name": c.name, "value": c.value or "", "url": url} for c in self.http.cookies.jar]
        )
        self.contexts.append(context)
        return context


@pytest.fixture
def sign_up(datafast: DataFast, outbox: Outbox) -> Iterator[Callable[..., Account]]:
    made: list[Account] = []

    def make(prefix: str = "user", *, verified: bool = True) -> Account:
        """A new account signed in through the API; ``verified``: its mailed link was opened."""
        email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        http = httpx.Client(base_url=datafast.url, timeout=15)
        answer = http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        if verified:
            link = outbox.wait_for(email, "Confirm your email").link(datafast.url)
            token = link.split("token=", 1)[1]
            confirmed = http.post("/api/v1/auth/verify-email", json={"token": token})
            assert confirmed.status_code == 200, confirmed.text
        made.append(Account(email, PASSWORD, http))
        return made[-1]

    yield make
    for account in made:
        for context in account.contexts:
            context.close()  # a no-op for one the test closed
        account.http.close()


def unique_host(prefix: str = "s") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}.test"


# --- pages ----------------------------------------------------------------------------------------


@dataclass
class Errors:
    """Errors a page logged; the API's expected 4xx answers show as 'Failed to load resource'."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.messages.append(str(error)))
        page.on("console", lambda m: self.messages.append(m.text) if m.type == "error" else None)
        return page

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not m.startswith("Failed to load resource")]


@pytest.fixture
def errors() -> Iterator[Errors]:
    seen = Errors()
    yield seen
    assert seen.unexpected() == [], "a page logged errors"


def shot(page: Page, name: str) -> None:
    """A full-page screenshot once every panel has loaded (no loading placeholder left)."""
    expect(page.locator(".skeleton")).to_have_count(0, timeout=15_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def shots(
    browser: Browser,
    context: BrowserContext | None,
    url: str,
    name: str,
    ready: Callable[[Page], None],
    errors: Errors | None = None,
) -> None:
    """``name`` in light and dark, at desktop (1280x900) and phone (390x844) width.

    Each variant is a fresh context (with ``context``'s cookies) in that colour scheme; ``ready``
    waits for what the screen must show. The phone layout must not scroll sideways.
    """
    state = context.storage_state() if context is not None else None
    for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for scheme in ("light", "dark"):
            variant = browser.new_context(
                user_agent=CHROME_MAC,
                viewport=viewport,
                is_mobile=device == "phone",
                has_touch=device == "phone",
                color_scheme=scheme,
                storage_state=state,
            )
            try:
                page = variant.new_page()
                if errors is not None:
                    errors.watch(page)
                page.goto(url)
                ready(page)
                # Nothing still loading: a placeholder left in a screenshot hides what the screen shows.
                expect(page.locator(".skeleton")).to_have_count(0, timeout=10_000)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{name} scrolls sideways at {device} width ({width}px)"
                shot(page, f"{name}-{device}-{scheme}")
            finally:
                variant.close()


# --- traffic --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One event a server sends to ``POST /track`` for a visitor (the tracker's fields)."""

    visitor: str
    path: str
    event_type: str = "pageview"
    goal_name: str | None = None
    revenue: float | None = None
    """A goal's value, in the site's currency (major units)."""
    props: dict[str, str] | None = None


def track(datafast: DataFast, site_id: str, host: str, hits: list[Hit], ip: str | None = None) -> list[str]:
    """Send ``hits`` (in batches of 100) and wait until ClickHouse has them; returns their event ids.

    ``ip``: the visitors' address, as a proxy in front of DataFast forwards it."""
    events: list[dict[str, Any]] = []
    for hit in hits:
        event: dict[str, Any] = {
            "website_id": site_id,
            "page_url": f"https://{host}{hit.path}",
            "event_id": uuid.uuid4().hex,
            "visitor_id": hit.visitor,
            "session_id": f"{hit.visitor}-s",
            "event_type": hit.event_type,
        }
        if hit.goal_name is not None:
            event["goal_name"] = hit.goal_name
        if hit.revenue is not None:
            event["revenue"] = hit.revenue
        if hit.props is not None:
            event["props"] = hit.props
        events.append(event)
    ids: list[str] = []
    for start in range(0, len(events), 100):
        answer = httpx.post(
            datafast.url + "/track",
            json=events[start : start + 100],
            headers={"user-agent": CHROME_MAC, **({"x-forwarded-for": ip} if ip else {})},
            timeout=15,
        )
        assert answer.status_code == 202, answer.text
        assert "dropped" not in answer.json(), answer.text
        ids += [str(uuid.UUID(hex=i.removeprefix("evt_"))) for i in answer.json()["ids"]]
    deadline = time.monotonic() + 15
    while not datafast.spool_is_empty():  # a 202 means spooled; empty means written to ClickHouse
        assert time.monotonic() < deadline, "the spool was not written within 15 s"
        time.sleep(0.05)
    return ids


GERMANY = "85.214.0.1"  # DE in the bundled country table


def send_visit(
    datafast: DataFast, site_id: str, host: str, visitor: str, path: str = "/pricing", ip: str = GERMANY
) -> None:
    """One pageview sent as a server behind DataFast's trusted proxy would (a visitor in ``ip``'s country)."""
    answer = httpx.post(
        datafast.url + "/track",
        json={
            "website_id": site_id,
            "page_url": f"https://{host}{path}",
            "event_id": uuid.uuid4().hex,
            "visitor_id": visitor,
            "session_id": f"{visitor}-s",
        },
        headers={"user-agent": CHROME_MAC, "x-forwarded-for": ip},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
