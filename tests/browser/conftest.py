"""The browser tests' world: a running DataFast, a local test site, and Debian's Chromium.

- DataFast is the app ``datafast serve`` runs (``create_asgi`` under granian), served from a thread
  of this process: chDB lets one process own its data, and the tests read the stored rows from the
  same chDB (``Stored``). Nothing of DataFast is replaced.
- The test site is a small HTTP server on 127.0.0.1. Chromium resolves every ``*.test`` hostname to
  it (``--host-resolver-rules``), so each test has its own hostname, its own DataFast site and its
  own cookies. Pages load the real script from DataFast at ``/js/script.js``.
- Chromium runs headless with a desktop User-Agent (the server drops headless ones) and without the
  automation flag (the tracker ignores ``navigator.webdriver``); one test checks that it does.
"""

from __future__ import annotations

import asyncio
import gc
import html
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from granian.constants import Interfaces
from granian.server.embed import Server as Granian
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from datafast.app import create_asgi
from datafast.db.config import sqlalchemy_config
from datafast.domain.accounts.services import UserService
from datafast.domain.sites.services import WebsiteService
from datafast.server.script import SCRIPT_DIR
from datafast.settings import load_settings
from tests.conftest import free_port
from tests.helpers import CHROME_MAC, metric

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
    # Headless Chromium says "HeadlessChrome", which DataFast drops as a bot. The context's override
    # does not reach a beacon sent as the page unloads: the browser-wide switch does.
    f"--user-agent={CHROME_MAC}",
]
NOT_AUTOMATED = "--disable-blink-features=AutomationControlled"  # navigator.webdriver stays false
DATABASE = "datafast_browser"


# --- DataFast ------------------------------------------------------------------------------------


@dataclass
class DataFast:
    url: str
    env: dict[str, str]

    def create_site(
        self, domain: str, hostnames: list[str] | None = None, currency: str = "USD", owner: str | None = None
    ) -> str:
        """A site owned by a new user (``owner``, password ``password1``; an email made up if None)."""
        settings = load_settings(self.env, env_file=None)

        async def create() -> str:
            config = sqlalchemy_config(settings)
            try:
                async with config.get_session() as session:
                    user = await UserService(session=session).create_user(
                        owner or f"owner-{uuid.uuid4().hex[:8]}@example.com", "password1"
                    )
                    site = await WebsiteService(session=session).create_site(user, domain, currency=currency)
                    site.hostnames = hostnames or []
                    await session.commit()
                    return str(site.id)
            finally:
                await config.get_engine().dispose()

        # Playwright's sync API keeps an event loop running in this thread: run ours in another.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, create()).result()

    def spool_is_empty(self) -> bool:
        metrics = httpx.get(self.url + "/metrics", timeout=5).text
        return metric(metrics, "datafast_spool_depth") == 0


@pytest.fixture(scope="module")
def datafast_extra_env() -> dict[str, str]:
    """More settings for the module's DataFast (a conftest or module overrides it, e.g. mail)."""
    return {}


@pytest.fixture(scope="module")
def datafast(
    chdb_path: Path, tmp_path_factory: pytest.TempPathFactory, datafast_extra_env: dict[str, str]
) -> Iterator[DataFast]:
    if not (SCRIPT_DIR / "script.js").is_file():
        pytest.fail(f"{SCRIPT_DIR}/script.js is missing: run `make build` first")
    port = free_port()
    env = {
        "DATA_DIR": str(tmp_path_factory.mktemp("browser-data")),
        "CLICKHOUSE_URL": f"chdb://{chdb_path}",
        "CLICKHOUSE_DATABASE": DATABASE,
        "LOG_LEVEL": "WARNING",
        "MIGRATE_ON_START": "true",
        "INGEST_FLUSH_INTERVAL": "0.1",
        "PORT": str(port),
        # The dashboard's sign-up posts from this origin: it must be the app's own.
        "BASE_URL": f"http://127.0.0.1:{port}",
        **datafast_extra_env,
    }
    # create_asgi() reads its settings from the environment, as under `datafast serve`.
    patch = pytest.MonkeyPatch()
    for name, value in env.items():
        patch.setenv(name, value)
    server = Granian(
        create_asgi,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        log_enabled=False,
    )
    loop = asyncio.new_event_loop()
    failed: list[BaseException] = []
    before = set(_sqlite_threads())

    def serve() -> None:
        try:
            loop.run_until_complete(server.serve())
        except BaseException as exc:  # surfaced by the readiness wait below
            failed.append(exc)

    thread = threading.Thread(target=serve, name="datafast", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert not failed, f"DataFast did not start: {failed[0]!r}"
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "DataFast was not ready after 60 s"
        time.sleep(0.1)
    try:
        yield DataFast(url, env)
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(timeout=30)
        patch.undo()
        assert not thread.is_alive(), "DataFast did not stop"
        # A request cut off by the shutdown (an open realtime stream) can leave a database
        # connection checked out. Collected now, its aiosqlite thread finishes while this loop still
        # exists; collected later, it raises into whichever test runs then.
        gc.collect()
        for sqlite_thread in set(_sqlite_threads()) - before:  # this server's connections
            sqlite_thread.join(timeout=5)
        loop.close()


def _sqlite_threads() -> list[threading.Thread]:
    """The threads aiosqlite runs each database connection on."""
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


class Stored:
    """The rows DataFast stored in ClickHouse for one site."""

    def __init__(self, chdb_path: Path, datafast: DataFast, site_id: str) -> None:
        self.client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=DATABASE)
        self.datafast = datafast
        self.site_id = site_id

    def rows(self) -> list[dict[str, Any]]:
        result = self.client.query(
            "SELECT * FROM events WHERE website_id = {s:UUID} ORDER BY timestamp, event_type",
            parameters={"s": self.site_id},
        )
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def wait_for(self, count: int, page: Page | None = None, timeout: float = 15) -> list[dict[str, Any]]:
        """Exactly ``count`` rows, once everything is delivered and written.

        Polls until ``count`` rows are there; then waits until the page's queue is empty (every
        event answered) and the server's spool is drained (every accepted event in ClickHouse), so
        that a duplicate sent late would be counted too.
        """
        deadline = time.monotonic() + timeout
        rows = self.rows()
        while len(rows) < count:
            assert time.monotonic() < deadline, f"expected {count} rows, found {len(rows)}: {_brief(rows)}"
            time.sleep(0.05)
            rows = self.rows()
        while not ((page is None or queue_of(page) == []) and self.datafast.spool_is_empty()):
            assert time.monotonic() < deadline, f"not all delivered: {page and queue_of(page)}"
            time.sleep(0.05)
        rows = self.rows()
        assert len(rows) == count, f"expected {count} rows, found {len(rows)}: {_brief(rows)}"
        return rows


def _brief(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["event_type"], r["event_name"], r["pathname"], dict(r["props"])) for r in rows]


def queue_of(page: Page) -> list[dict[str, Any]] | None:
    """The tracker's unsent events (localStorage), or None when it never made a queue."""
    value: list[dict[str, Any]] | None = page.evaluate("JSON.parse(localStorage.getItem('datafast_queue'))")
    return value


# --- the test site ---------------------------------------------------------------------------------


class LocalSite:
    """Pages served by host and path; a test adds the pages it needs."""

    def __init__(self) -> None:
        self.pages: dict[tuple[str, str], str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = self.headers.get("host", "").split(":")[0]
                body = pages.get((host, self.path.split("?")[0]))
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="test-site", daemon=True).start()

    def add(self, host: str, path: str, body: str) -> str:
        self.pages[(host, path)] = body
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def test_site() -> Iterator[LocalSite]:
    site = LocalSite()
    yield site
    site.server.shutdown()
    site.server.server_close()


def snippet(datafast: DataFast, site_id: str, **attrs: str | bool) -> str:
    """The install snippet from the README, with the script's attributes (``cookieless=True``…)."""
    extra = "".join(
        f" data-{name.replace('_', '-')}" + ("" if value is True else f'="{html.escape(str(value))}"')
        for name, value in attrs.items()
        if value is not False
    )
    return (
        "<script>window.datafast=window.datafast||function(){"
        "(window.datafast.q=window.datafast.q||[]).push(arguments)};</script>\n"
        f'<script defer data-website-id="{site_id}"{extra} src="{datafast.url}/js/script.js"></script>'
    )


def page_html(head: str, body: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset=utf-8><link rel=icon href='data:,'><title>t</title>"
        f"{head}</head><body>{body}</body></html>"
    )


# --- Chromium -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, NOT_AUTOMATED])
    yield browser
    browser.close()


@dataclass
class Console:
    messages: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [text for kind, text in self.messages if kind == "error"] + self.page_errors

    def texts(self, kind: str) -> list[str]:
        return [text for k, text in self.messages if k == kind]


@dataclass
class Visit:
    """One test's browser context and page, with what the page printed and sent to /track."""

    context: BrowserContext
    page: Page
    console: Console
    posted: list[tuple[int, list[dict[str, Any]]]]
    """(status, events) of each POST /track answered."""
    expect_console_errors: bool = False

    def sent_ids(self) -> list[str]:
        return [event["event_id"] for status, events in self.posted if status == 202 for event in events]


def open_visit(browser: Browser, datafast: DataFast) -> Visit:
    context = browser.new_context(user_agent=CHROME_MAC, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    console = Console()
    page.on("console", lambda message: console.messages.append((message.type, message.text)))
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    posted: list[tuple[int, list[dict[str, Any]]]] = []

    def answered(response: Any) -> None:
        request = response.request
        if request.method == "POST" and request.url == datafast.url + "/track":
            body = request.post_data_json
            posted.append((response.status, body["events"] if isinstance(body, dict) else body))

    page.on("response", answered)
    return Visit(context, page, console, posted)


@pytest.fixture
def visit(browser: Browser, datafast: DataFast) -> Iterator[Visit]:
    opened = open_visit(browser, datafast)
    yield opened
    opened.context.close()
    if not opened.expect_console_errors:
        assert opened.console.errors() == [], "the page logged errors"


@pytest.fixture
def new_site(datafast: DataFast, test_site: LocalSite) -> Callable[..., tuple[str, str]]:
    """A DataFast site on a hostname of its own: returns (hostname, website id)."""

    def make(hostnames: list[str] | None = None, currency: str = "USD") -> tuple[str, str]:
        host = f"s{uuid.uuid4().hex[:10]}.test"
        return host, datafast.create_site(host, hostnames=hostnames, currency=currency)

    return make


@pytest.fixture
def stored(chdb_path: Path, datafast: DataFast) -> Iterator[Callable[[str], Stored]]:
    made: list[Stored] = []

    def make(site_id: str) -> Stored:
        made.append(Stored(chdb_path, datafast, site_id))
        return made[-1]

    yield make
    for store in made:
        store.client.close()
