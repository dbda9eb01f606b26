"""Ingest → Stats API over real HTTP, on DataFast deployed as users deploy it: embedded (one
``datafast serve``) and scaled (two ``datafast serve`` and two ``datafast worker`` processes on
PostgreSQL, Valkey and one ClickHouse server over HTTP, ``datafast migrate`` run once).

The traffic is sent to the web processes in turn; the truth is computed from what was sent."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
import valkey

from datafast.domain.ingest.jobs import DRAIN
from datafast.domain.ingest.log.stream import GROUP, stream_name
from tests.conftest import flushed_valkey, free_port
from tests.deployment import Deployment
from tests.helpers import CHROME_MAC
from tests.live import Account

PARTITIONS = 1  # INGEST_PARTITIONS' default

SOURCES = ["google", "newsletter", "twitter", None]
PAGES = ["/", "/pricing", "/blog/launch", "/docs", "/checkout"]


@dataclass(frozen=True)
class Sent:
    visitor: str
    session: str
    path: str
    kind: str
    source: str | None
    at: datetime


def plan(seed: int, visitors: int, now: datetime) -> list[Sent]:
    """Visits of the last 40 minutes: a landing page with its campaign source, then more pages and
    sometimes a goal; each visitor comes once or twice."""
    rng = random.Random(seed)
    sent: list[Sent] = []
    for v in range(visitors):
        visitor = f"v{seed}-{v}"
        for s in range(rng.choice([1, 1, 2])):
            session, source = f"{visitor}-s{s}", rng.choice(SOURCES)
            at = now - timedelta(minutes=40 - 15 * s, seconds=rng.randrange(600))
            sent += [
                Sent(visitor, session, rng.choice(PAGES), "pageview", source, at + timedelta(seconds=20 * n))
                for n in range(rng.randrange(1, 5))
            ]
            if rng.random() < 0.3:
                sent.append(Sent(visitor, session, "/pricing", "signup", source, at + timedelta(seconds=100)))
    return sent


def truth(sent: list[Sent]) -> dict[str, Any]:
    pageviews = [s for s in sent if s.kind == "pageview"]
    first: dict[str, Sent] = {}
    for s in sorted(sent, key=lambda s: s.at):
        first.setdefault(s.session, s)
    by_source: dict[str, set[str]] = defaultdict(set)
    for s in first.values():
        by_source[s.source or ""].add(s.visitor)
    by_page: dict[str, list[Sent]] = defaultdict(list)  # a page's visitors: any event of theirs on it
    for s in sent:
        by_page[s.path].append(s)
    return {
        "totals": {
            "visitors": len({s.visitor for s in sent}),
            "visits": len({s.session for s in sent}),
            "pageviews": len(pageviews),
        },
        "utm_source": {k: len(v) for k, v in by_source.items()},  # "" is the row of no campaign
        "page": {
            k: (len({s.visitor for s in v}), sum(s.kind == "pageview" for s in v)) for k, v in by_page.items()
        },
    }


def body(account: Account, s: Sent, now: datetime) -> dict[str, Any]:
    event: dict[str, Any] = {
        "website_id": account.site_id,
        "page_url": f"https://{account.domain}{s.path}" + (f"?utm_source={s.source}" if s.source else ""),
        "event_id": uuid.uuid4().hex,
        "visitor_id": s.visitor,
        "session_id": s.session,
        "timestamp": s.at.timestamp() * 1000,
        "sent_at": now.timestamp() * 1000,
    }
    if s.kind != "pageview":
        event.update(event_type="goal", goal_name=s.kind)
    return event


@pytest.fixture(scope="module")
def scaled_valkey() -> Iterator[str]:
    """The Valkey database of this module's shared deployment (the per-test one is flushed
    between tests)."""
    yield from flushed_valkey(1)


@pytest.fixture
def own_valkey() -> Iterator[str]:
    """A Valkey database of one test's own: no other deployment's workers drain its stream."""
    yield from flushed_valkey(2)


def _deployment(
    request: pytest.FixtureRequest, root: Path, mode: str, valkey_fixture: str = "scaled_valkey", **env: str
) -> Deployment:
    if mode == "embedded":
        return Deployment(root, "embedded", **env)
    return Deployment(
        root,
        "scaled",
        web=2,
        workers=2,
        postgres_url=request.getfixturevalue("postgres_url"),
        valkey_url=request.getfixturevalue(valkey_fixture),
        clickhouse_url=request.getfixturevalue("clickhouse_url"),
        **env,
    )


@pytest.fixture(scope="module", params=["embedded", pytest.param("scaled", marks=pytest.mark.scaled)])
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    with _deployment(request, tmp_path_factory.mktemp("deployed"), request.param) as deployment:
        yield deployment


def _stats(url: str, account: Account, path: str, **params: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    params = {"start_date": str(today - timedelta(days=1)), "end_date": str(today), **params}
    response = httpx.get(
        f"{url}/api/v1/sites/{account.site_id}/{path}", params=params, headers=account.bearer
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_traffic_sent_to_every_web_process_reads_the_same_truth_from_each(deployed: Deployment) -> None:
    account = deployed.account()
    now = datetime.now(UTC).replace(microsecond=0)
    sent = plan(7, 40, now)
    clients = [
        httpx.Client(base_url=url, headers={"user-agent": CHROME_MAC}, timeout=30) for url in deployed.urls
    ]
    try:
        for n, s in enumerate(sent):
            response = clients[n % len(clients)].post("/track", json=body(account, s, now))
            assert response.status_code == 202, response.text
    finally:
        for client in clients:
            client.close()
    expected = truth(sent)

    deadline = time.monotonic() + 90
    while True:  # queryable once the (worker's) batch writer has flushed
        totals = _stats(deployed.urls[-1], account, "metrics", metrics="visitors,visits,pageviews")["totals"]
        # Events and the visits they open or extend are written one after the other: wait for both.
        written = all(totals[k] >= expected["totals"][k] for k in ("pageviews", "visits"))
        if written or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    answers = []
    for url in deployed.urls:
        metrics = _stats(url, account, "metrics", metrics="visitors,visits,pageviews")
        sources = _stats(url, account, "breakdown", dimension="utm_source", metrics="visitors")
        pages = _stats(url, account, "breakdown", dimension="page", metrics="visitors,pageviews")
        series = _stats(url, account, "timeseries", interval="hour", metrics="visitors,pageviews")
        answers.append((metrics["totals"], sources["rows"], pages["rows"], series["timeseries"]))
        assert {k: metrics["totals"][k] for k in expected["totals"]} == expected["totals"], deployed.logs()
        assert {r["dimensions"][0]: r["metrics"]["visitors"] for r in sources["rows"]} == expected[
            "utm_source"
        ]
        assert {
            r["dimensions"][0]: (r["metrics"]["visitors"], r["metrics"]["pageviews"]) for r in pages["rows"]
        } == expected["page"]
        assert sum(b["metrics"]["pageviews"] for b in series["timeseries"]) == expected["totals"]["pageviews"]
    assert all(answer == answers[0] for answer in answers), "web processes disagree"


def test_a_retried_send_is_stored_once_whichever_process_takes_it(deployed: Deployment) -> None:
    account = deployed.account()
    now = datetime.now(UTC)
    event = body(account, Sent("v-retry", "s-retry", "/", "pageview", None, now), now)
    for url in deployed.urls * 2:  # the same event id, to each web process, twice
        assert httpx.post(url + "/track", json=event, headers={"user-agent": CHROME_MAC}).status_code == 202
    deadline = time.monotonic() + 60
    while (
        pageviews := _stats(deployed.urls[0], account, "metrics", metrics="pageviews")["totals"]["pageviews"]
    ) < 1:
        assert time.monotonic() < deadline, "never stored"
        time.sleep(0.2)
    for url in deployed.urls:
        assert _stats(url, account, "metrics", metrics="pageviews")["totals"]["pageviews"] == pageviews == 1


# --- kill -9 of a worker mid-batch, in scaled mode over HTTP


async def _load(url: str, account: Account, acknowledged: list[str], stop: asyncio.Event) -> None:
    """A tracker's sends: a 503 (the log cannot be written) is sent again, same event id, after a pause."""
    async with httpx.AsyncClient(timeout=10, headers={"user-agent": CHROME_MAC}) as client:
        while not stop.is_set():
            event = {
                "website_id": account.site_id,
                "page_url": f"https://{account.domain}/",
                "event_id": uuid.uuid4().hex,
            }
            while True:
                response = await client.post(url + "/track", json=event)
                if response.status_code != 503:
                    break
                assert int(response.headers["retry-after"]) > 0
                await asyncio.sleep(0.05)
            assert response.status_code == 202, response.text
            acknowledged.append(response.json()["id"].removeprefix("evt_"))


def _holding(client: valkey.Valkey, pid: int) -> int:
    """Entries read and not yet acknowledged in the partitions whose SAQ drain job the worker
    process ``pid`` is running now."""
    held = 0
    for partition in range(PARTITIONS):
        raw = client.get(f"saq:job:datafast:{DRAIN}:{partition}")
        job = json.loads(raw) if raw else {}
        if job.get("status") == "active" and f"-{pid}-" in str(job.get("worker_id")):
            held += _pending_in(client, partition)
    return held


def _pending_in(client: valkey.Valkey, partition: int) -> int:
    try:
        return int(client.xpending(stream_name(partition), GROUP)["pending"])
    except valkey.ResponseError:  # no drain job has created the group yet
        return 0


def _left(client: valkey.Valkey) -> list[tuple[int, int, int]]:
    """(entries, pending, announced batches) of every partition that still has any."""
    left = []
    for partition in range(PARTITIONS):
        stream = stream_name(partition)
        counts = (
            int(client.xlen(stream)),
            _pending_in(client, partition),
            int(client.hlen(stream + ":batches")),
        )
        if any(counts):
            left.append(counts)
    return left


@pytest.mark.scaled
def test_kill_9_of_a_worker_mid_batch_loses_and_duplicates_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, own_valkey: str
) -> None:
    deployment = _deployment(
        request,
        tmp_path,
        "scaled",
        "own_valkey",
        INGEST_BATCH_ROWS="50",
        INGEST_FLUSH_INTERVAL="0.05",
        INGEST_HEARTBEAT="2",  # a dead worker's drain job is retried within seconds
    )
    with deployment:
        account = deployment.account()
        watch = valkey.Valkey.from_url(own_valkey)
        acknowledged: list[str] = []
        killed_holding = 0

        async def drive() -> None:
            nonlocal killed_holding
            victim = None
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(_load(url, account, acknowledged, stop))
                for url in deployment.urls
                for _ in range(6)
            ]
            deadline = time.monotonic() + 60
            while victim is None:  # the first worker seen holding read, unacknowledged entries
                assert time.monotonic() < deadline, (
                    f"no worker ever held a batch: {_left(watch)}, "
                    f"workers {[w.pid for w in deployment.workers]} "
                    f"alive {[w.poll() for w in deployment.workers]}\n{deployment.logs()}"
                )
                if failed := [t for t in tasks if t.done()]:
                    await failed[0]  # a sender stopped: its error says why
                await asyncio.sleep(0.005)
                for worker in deployment.workers:
                    if killed_holding := _holding(watch, worker.pid):
                        victim = worker
                        break
            deployment.kill_worker(victim)  # mid-batch
            await asyncio.sleep(1)  # traffic goes on after the kill
            stop.set()
            await asyncio.gather(*tasks)

        asyncio.run(drive())
        assert killed_holding > 0
        assert acknowledged
        deployment.start_worker()  # a replacement, as an orchestrator would start
        watch.close()
        stored = _stored_once_drained(deployment, own_valkey, account)
    lost = set(acknowledged) - set(stored)
    assert lost == set(), (
        f"{len(lost)} of {len(acknowledged)} acknowledged events were lost ({len(stored)} stored)"
    )
    assert len(stored) == len(acknowledged)


def _stored_once_drained(deployment: Deployment, valkey_url: str, account: Account) -> dict[str, int]:
    """Once the workers have drained the stream: how often each stored event id of the site is
    there (asserted once each)."""
    watch = valkey.Valkey.from_url(valkey_url)
    deadline = time.monotonic() + 120
    while _left(watch):
        assert time.monotonic() < deadline, f"not drained:\n{deployment.logs()}"
        time.sleep(0.1)
    watch.close()
    client = clickhouse_connect.get_client(
        dsn=deployment.env["CLICKHOUSE_URL"], database=deployment.env["CLICKHOUSE_DATABASE"]
    )
    try:
        rows = client.query(
            "SELECT event_id, count() FROM events WHERE website_id = {s:UUID} GROUP BY event_id",
            parameters={"s": account.site_id},
        ).result_rows
    finally:
        client.close()
    stored = {str(event_id).replace("-", ""): int(count) for event_id, count in rows}
    assert [k for k, count in stored.items() if count != 1] == [], "an event was stored twice"
    return stored


class PrivateValkey:
    """A Valkey (redis-server) of one test's own, with an append-only file fsynced on every write,
    so it can be killed and started again on the same data."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "valkey"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if valkey.Valkey.from_url(self.url).ping():
                    return
            except valkey.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: whatever the append-only file holds is what survives
        self.process.wait(timeout=10)


@pytest.fixture
def private_valkey(tmp_path: Path) -> Iterator[PrivateValkey]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed (the test machine's Valkey stand-in)")
    server = PrivateValkey(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.mark.scaled
def test_a_valkey_restart_under_load_loses_and_duplicates_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, private_valkey: PrivateValkey
) -> None:
    deployment = Deployment(
        tmp_path / "app",
        "scaled",
        web=2,
        workers=1,
        postgres_url=request.getfixturevalue("postgres_url"),
        valkey_url=private_valkey.url,
        clickhouse_url=request.getfixturevalue("clickhouse_url"),
        INGEST_FLUSH_INTERVAL="0.05",
    )
    with deployment:
        account = deployment.account()
        acknowledged: list[str] = []

        async def drive() -> None:
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(_load(url, account, acknowledged, stop))
                for url in deployment.urls
                for _ in range(4)
            ]
            await asyncio.sleep(1.5)
            private_valkey.kill()  # kill -9 under load
            await asyncio.sleep(1)
            private_valkey.start()  # the same append-only file
            await asyncio.sleep(2)  # traffic goes on after the restart
            stop.set()
            await asyncio.gather(*tasks)

        asyncio.run(drive())
        assert acknowledged
        stored = _stored_once_drained(deployment, private_valkey.url, account)
    assert set(acknowledged) - set(stored) == set(), "acknowledged events were lost"
