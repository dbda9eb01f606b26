"""DataFast behind a real nginx (Debian's), configured with the README's "Behind a reverse proxy"
example: visitors' addresses, countries and cookieless ids come out as without the proxy."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import CHROME_MAC
from tests.live import Account, LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = Path("/usr/sbin/nginx")
CDN = "127.0.0.4"
"""A proxy in front of nginx (a CDN), listed in TRUSTED_PROXIES below: it passes the visitor's address."""


def documented_location(upstream_port: int) -> str:
    """The ``location /`` block of the README's nginx example, pointed at the test's server."""
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```nginx\n(.*?)```", readme, re.S)
    assert example is not None, "the README has no nginx example"
    block = re.search(r"^( *)location / \{\n.*?^\1\}", example.group(1), re.S | re.M)
    assert block is not None, "the README's nginx example has no `location /` block"
    assert "proxy_pass http://127.0.0.1:8000;" in block.group(0)
    return block.group(0).replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """(the DataFast server, the URL of the nginx in front of it)."""
    if not NGINX.exists():
        pytest.fail(f"{NGINX} is missing: `make test` installs Debian's nginx-light")
    # As the compose files set it (loopback and the private networks), plus the CDN.
    trusted = f"127.0.0.1/32,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,{CDN}/32"
    with LiveServer(tmp_path / "app", TRUSTED_PROXIES=trusted, LOG_LEVEL="INFO") as server:
        port = free_port()
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        temp = " ".join(
            f"{kind}_temp_path {prefix / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp}
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        client_max_body_size 1m;
{documented_location(server.port)}
    }}
}}
"""
        )
        config = ["-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        checked = subprocess.run([NGINX, *config, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        stderr = (prefix / "stderr.log").open("wb")
        process = subprocess.Popen([NGINX, *config, "-g", "daemon off;"], stderr=stderr)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, (prefix / "stderr.log").read_text()
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
            yield server, url
        finally:
            process.terminate()
            process.wait(timeout=20)
            stderr.close()


def track(url: str, account: Account, source: str, path: str, forwarded_for: str | None = None) -> None:
    """A pageview sent from the local address ``source`` (a visitor, or the CDN)."""
    headers = {"user-agent": CHROME_MAC}
    if forwarded_for:
        headers["x-forwarded-for"] = forwarded_for
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as client:
        response = client.post(
            url + "/track",
            json={"website_id": account.site_id, "page_url": f"https://{account.domain}{path}"},
            headers=headers,
        )
    assert response.status_code == 202, response.text


def countries(server: LiveServer, account: Account, pageviews: int) -> dict[str, int]:
    """Visitors by country from the Stats API, once it counts the ``pageviews`` sent."""
    body: dict[str, Any] = {
        "metrics": ["visitors", "pageviews"],
        "dimensions": ["country"],
        "date_range": "7d",
    }
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(
            f"{server.url}/api/v1/sites/{account.site_id}/query",
            json=body,
            headers=account.bearer,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        rows = response.json()["rows"]
        if sum(r["metrics"]["pageviews"] for r in rows) >= pageviews or time.monotonic() > deadline:
            return {r["dimensions"][0]: r["metrics"]["visitors"] for r in rows}
        time.sleep(0.2)


def test_behind_nginx_visitors_keep_their_own_address_country_and_cookieless_id(
    proxied: tuple[LiveServer, str],
) -> None:
    server, url = proxied
    account = server.account(domain=f"s{uuid.uuid4().hex[:8]}.example.com")
    # Two visitors straight to nginx (their own addresses), one of them twice; and one visitor in
    # Great Britain whose request came through the CDN.
    track(url, account, "127.0.0.2", "/a")
    track(url, account, "127.0.0.2", "/b")
    track(url, account, "127.0.0.3", "/a")
    track(url, account, CDN, "/gb", forwarded_for="81.2.69.142")

    by_country = countries(server, account, pageviews=4)
    # Without the proxy's header believed, all four would be one visitor (nginx's address).
    assert by_country == {"": 2, "GB": 1}
    assert "peer not in TRUSTED_PROXIES" not in server.log()


def test_a_proxy_missing_from_trusted_proxies_is_named_in_the_log(tmp_path: Path) -> None:
    """Misconfigured: nginx's address is not trusted, so every visitor is nginx — and the log says so."""
    with LiveServer(tmp_path / "app", TRUSTED_PROXIES="10.0.0.0/8", LOG_LEVEL="INFO") as server:
        account = server.account()
        for source in ("127.0.0.2", "127.0.0.3"):
            # As nginx would send it: the visitor's address appended to X-Forwarded-For.
            with httpx.Client(timeout=10) as client:
                response = client.post(
                    server.url + "/track",
                    json={"website_id": account.site_id, "page_url": f"https://{account.domain}/"},
                    headers={"user-agent": CHROME_MAC, "x-forwarded-for": source},
                )
            assert response.status_code == 202, response.text
        assert countries(server, account, pageviews=2) == {"": 1}  # both visitors merged into one
        log = server.log()
    warnings = [line for line in log.splitlines() if "peer not in TRUSTED_PROXIES" in line]
    assert len(warnings) == 1, log[-3000:]
    assert '"peer": "127.0.0.1"' in warnings[0]
