"""/metrics as Prometheus reads it: promtool accepts the page, and under ``--workers 2`` every
scrape (whichever process answers) reports the same totals (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.deployment import Deployment
from tests.helpers import CHROME_MAC, metric

PROMTOOL = "/usr/bin/promtool"


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.scaled
def test_every_scrape_of_two_worker_processes_reads_the_same_totals_and_promtool_accepts_them(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    deployment = Deployment(
        tmp_path,
        "scaled",
        web=1,
        workers=0,  # nothing drains: the accepted events stay in the stream, counted in its depth
        postgres_url=request.getfixturevalue("postgres_url"),
        valkey_url=request.getfixturevalue("valkey_url"),
        clickhouse_url=request.getfixturevalue("clickhouse_url"),
        WORKERS="2",
        METRICS_TOKEN="t" * 32,
    )
    with deployment:
        account = deployment.account()
        url = deployment.urls[0]
        # A new connection per request: the kernel hands each to either process.
        headers = {"user-agent": CHROME_MAC, "connection": "close"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for n in range(40):  # spread over both processes by the kernel's accept queue
                event = {"website_id": account.site_id, "page_url": f"https://{account.domain}/p{n}"}
                assert client.post("/track", json={**event, "event_id": uuid.uuid4().hex}).status_code == 202
            bots = {"website_id": account.site_id, "page_url": f"https://{account.domain}/"}
            assert (
                client.post("/track", json=bots, headers={"user-agent": "Googlebot/2.1"}).status_code == 202
            )
            assert (
                client.get(f"/api/v1/sites/{account.site_id}/metrics", headers=account.bearer).status_code
                == 200
            )
            scrapes = [
                client.get("/metrics", headers={"authorization": f"Bearer {'t' * 32}"}).text
                for _ in range(12)
            ]
        # Both processes took requests (each keeps its samples in its own files)...
        counters = list((deployment.webs[0].data_dir / "prometheus").glob("counter_*.db"))
        assert len(counters) >= 2, counters
    # ...and every scrape, whichever process answered, sums them.
    for text in scrapes:
        assert metric(text, "datafast_events_accepted_total") == 40, text
        assert metric(text, "datafast_events_dropped_total", reason="bot") == 1
        assert (
            metric(text, "datafast_spool_depth") == 40
        )  # one stream entry per accepted request; none for the bot
        assert (
            metric(
                text,
                "datafast_http_requests_total",
                path="/api/v1/sites/{website_id}/metrics",
                status_code="200",
            )
            == 1
        )
    checked = promtool_check(scrapes[0])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_accepts_an_embedded_servers_page(tmp_path: Path) -> None:
    with Deployment(tmp_path, "embedded", METRICS_TOKEN="t" * 32) as deployment:
        account = deployment.account()
        event = {"website_id": account.site_id, "page_url": f"https://{account.domain}/"}
        assert (
            httpx.post(
                deployment.urls[0] + "/track", json=event, headers={"user-agent": CHROME_MAC}
            ).status_code
            == 202
        )
        text = httpx.get(
            deployment.urls[0] + "/metrics", headers={"authorization": f"Bearer {'t' * 32}"}
        ).text
    assert metric(text, "datafast_events_accepted_total") == 1
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
