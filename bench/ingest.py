"""Ingest benchmark: wrk drives POST /track on a real DataFast; then every row is counted.

    .venv/bin/python bench/ingest.py [--mode embedded|scaled|both] [--duration 20] [--connections 64]
        [--web-processes 1] [--compare-views VIEW ...]

Per mode it prints two JSON lines (single-event requests, then batches of 100 events):
mode, events_per_s, p50_ms, p95_ms, p99_ms, accepted, stored, lost, duplicated, rss_mb,
baseline_events_per_s, ratio_to_baseline, rss_mb_by_process; cpu_us_per_event (CPU time spent
during the load per accepted event) with cpu_us_per_event_by_thread and cores_by_thread in
embedded mode (the event loop's thread, chDB's threads, the Python thread pools, granian) or
cpu_us_per_event_by_process and cores_by_process in scaled mode (web, worker, the ClickHouse
server, Valkey); and visible_p50_s / visible_p95_s:
the time from a probe event's 202 until the Stats API counts it, under the load (one probe a
0.25 s to a site of its own, left out of the other figures); log_depth_max, log_depth_end and
log_depth_by_5s: the requests captured and not yet in ClickHouse (``datafast_spool_depth`` of
``/metrics``, read every 0.5 s during the load): the most, the last read and the most of each
5 s (a processing side that keeps up stays bounded near a batch or two; one that falls behind
grows window by window). The baseline is a bare granian + msgspec ASGI handler measured in the
same run with the same load. Needs wrk (apt-get install wrk).

``--compare-views V …`` runs embedded mode twice, as migrated and then with the materialized
views V dropped before the server starts (the lines of the second run carry ``without_views``):
what those views cost at ingest, same machine, same run.

Embedded mode: one ``datafast serve`` on its defaults (SQLite, chDB in the process).

Scaled mode: PostgreSQL and Redis/Valkey on localhost (a fresh database; Valkey DB 12) and one
ClickHouse server over HTTP: tests/clickhouse_http.py, chDB in its own process running statements
one at a time (a lower bound for a real ClickHouse server), with a fresh CLICKHOUSE_DATABASE.
Deployed as tests/deployment.py does it: ``datafast migrate`` once, then one ``datafast serve``
and one ``datafast worker``, every process and the row counter on that URL, so the figures
include the HTTP hop to ClickHouse. Scaled lines add:

- ``queryable_s``: from the end of the wrk load until the web process's Stats API
  (``GET /api/v1/sites/{id}/metrics?metrics=pageviews``, a read-only API key of the user owning
  every site, all sites asked at once per round) counts every accepted and every stored event
  (wrk does not count the requests in flight when it stops; the server accepted and stored
  them); null if not within 300 s. ``queryable_polls``: the rounds it took (polling stops at
  the first round started with the ingest stream empty).
- ``clickhouse`` (how ClickHouse was reached), ``clickhouse_rss_mb`` (its server's memory
  after the load), ``web_processes`` and ``workers``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.clickhouse_http import ClickHouseServer  # noqa: E402
from tests.deployment import Deployment  # noqa: E402

PYTHON = sys.executable
SITES = 20
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
VALKEY_URL = "redis://127.0.0.1:6379/12"  # the test suite uses DBs 7-11
QUERYABLE_TIMEOUT = 300.0
PROBE_DOMAIN = "probe.bench.example"


BATCHES = [1, 100]
"""Events per request of each measured load (``--batch``)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started them (``/proc`` lists a
    child under the thread that forked it)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (granian runs the app in a child)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


THREAD_GROUPS = {"tokio-rt-worker": "granian"}
"""Thread names → the group a thread's CPU time is counted in. The process's first thread is
"python" (the event loop: capture and processing); threads with the process's own name are
Python's ("python threads": the pools that run fsyncs and ClickHouse calls); any other name is
one of chDB's engine threads."""


SETTINGS: dict[str, str] = {}
"""``--set`` settings, given to every DataFast process."""


def thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """CPU seconds so far of every thread of a process and its children: (pid, tid) → (group, s)."""
    pids = [pid, *children(pid)]
    ticks = os.sysconf("SC_CLK_TCK")
    threads = {}
    for p in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            # The whole process, its exited threads included (key tid 0).
            threads[(p, 0)] = (PROCESS, (int(stat[11]) + int(stat[12])) / ticks)
            main = _thread_stat(p, p)[0]
            for tid in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    name, cpu = _thread_stat(p, int(tid))
                    if int(tid) == p:
                        group = "python"
                    elif name == main:  # Python's own threads keep the process's name
                        group = "python threads"
                    else:
                        group = THREAD_GROUPS.get(name, "chdb")
                    threads[(p, int(tid))] = (group, cpu / ticks)
    return threads


PROCESS = "(process)"
"""``thread_cpu``'s group of a whole process's CPU time (its threads, live and exited)."""


def _thread_stat(pid: int, tid: int) -> tuple[str, int]:
    """(name, CPU ticks in user and system mode) of one thread."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return stat[stat.index("(") + 1 : stat.rindex(")")], int(fields[11]) + int(fields[12])


def process_cpu(processes: dict[str, int]) -> dict[tuple[int, int], tuple[str, float]]:
    """CPU seconds so far of named processes (each with its children), in ``thread_cpu``'s shape."""
    return {
        key: (name, seconds)
        for name, pid in processes.items()
        for key, (group, seconds) in thread_cpu(pid).items()
        if group == PROCESS
    }


def valkey_pid() -> dict[str, int]:
    """The local Valkey/Redis server's process, when this machine runs it (its CPU is counted)."""
    found = subprocess.run(["pgrep", "-o", "-f", "(valkey|redis)-server"], capture_output=True, text=True)
    return {"valkey": int(found.stdout.split()[0])} if found.stdout.strip() else {}


def cpu_per_event(
    before: dict[tuple[int, int], tuple[str, float]],
    after: dict[tuple[int, int], tuple[str, float]],
    events: int,
    seconds: float,
    by: str = "thread",
) -> dict[str, Any]:
    """Where the CPU went during the load: microseconds per accepted event by thread group (or by
    process), and the cores each kept busy."""
    spent: dict[str, float] = {}
    for key, (group, total) in after.items():
        spent[group] = spent.get(group, 0.0) + total - before.get(key, (group, 0.0))[1]
    if PROCESS in spent:  # threads that ended during the load are in the process's total only
        exited = spent.pop(PROCESS) - sum(spent.values())
        if exited > 0:
            spent["exited threads"] = exited
    spent = dict(sorted(spent.items(), key=lambda item: -item[1]))
    return {
        "cpu_us_per_event": round(sum(spent.values()) / max(events, 1) * 1e6, 1),
        f"cpu_us_per_event_by_{by}": {g: round(s / max(events, 1) * 1e6, 1) for g, s in spent.items()},
        f"cores_by_{by}": {g: round(s / seconds, 2) for g, s in spent.items()},
    }


def wrk(url: str, duration: int, connections: int, sites: list[str], batch: int) -> dict[str, float]:
    env = {**os.environ, "SITES": ",".join(sites), "BATCH": str(batch)}
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "track.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(out)
    result: dict[str, float] = json.loads(match[1])
    return result


def embedded_env(data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {
        **keep,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        **SETTINGS,
    }


def start_serve(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``datafast serve`` on a free port, ready; (process, its URL)."""
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "datafast", "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz")
    except BaseException:
        server.kill()
        raise
    return server, url


def datafast(*args: str, env: dict[str, str], cwd: Path) -> str:
    return subprocess.run(
        [PYTHON, "-m", "datafast", *args], env=env, cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def site_id(out: str) -> str:
    match = re.search(r"\(([0-9a-f-]{36})\)", out)
    assert match is not None, out
    return match[1]


def create_sites(env: dict[str, str], cwd: Path) -> list[str]:
    datafast("user", "create", "--email", "bench@example.com", "--password", "password1", env=env, cwd=cwd)
    return [
        site_id(
            datafast(
                "site",
                "create",
                "--domain",
                f"{n}.bench.example",
                "--owner",
                "bench@example.com",
                env=env,
                cwd=cwd,
            )
        )
        for n in range(1, SITES + 1)
    ]


def count_rows(dsn: str, database: str, cwd: Path, sites: list[str]) -> tuple[int, int]:
    """(rows, distinct event ids) of ``sites`` in ClickHouse, from a separate process (chDB: once the
    server has stopped, as a chDB directory has one process at a time)."""
    sql = "SELECT count(), uniqExact(event_id) FROM events WHERE has({s:Array(String)}, toString(website_id))"
    script = (
        "import clickhouse_connect,sys;"
        f"c=clickhouse_connect.get_client(dsn={dsn!r}, database={database!r}, autogenerate_session_id=False);"
        f"r=c.query({sql!r}, parameters={{'s': {sites!r}}}).result_rows[0];print(r[0], r[1])"
    )
    out = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, check=True, cwd=cwd).stdout
    rows, distinct = out.split()
    return int(rows), int(distinct)


def run_baseline(
    duration: int, connections: int, sites: list[str], batch: int, processes: int = 1
) -> dict[str, float]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(processes),
            "--no-ws",
            "bench.baseline_app:app",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/")  # any answer: the bare handler has no routes
        return wrk(f"http://127.0.0.1:{port}", duration, connections, sites, batch)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def stream_left(url: str, partitions: int) -> int:
    """Scaled mode: requests in the ingest streams not yet inserted (entries are deleted once
    inserted). By partition, not by a keyspace scan: that would cost seconds once the load has
    left a million de-duplication keys."""
    import valkey

    client = valkey.Valkey.from_url(url)
    try:
        return sum(int(client.xlen(f"datafast:ingest:{p}")) for p in range(partitions))
    finally:
        client.close()


class StatsProbe:
    """Pageviews of every site summed, as a web process's Stats API reports them (one read-only
    API key; the sites asked all at once, as a dashboard would)."""

    def __init__(self, url: str, api_key: str, sites: list[str], partitions: int = 1) -> None:
        self.url, self.sites, self.partitions = url, sites, partitions
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def _total(self, client: httpx.AsyncClient) -> int:
        async def pageviews(site: str) -> int:
            answer = await client.get(
                f"/api/v1/sites/{site}/metrics", params={"metrics": "pageviews", "period": "7d"}
            )
            answer.raise_for_status()
            return int(answer.json()["totals"]["pageviews"])

        return sum(await asyncio.gather(*(pageviews(site) for site in self.sites)))

    def total(self) -> int:
        async def once() -> int:
            async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=60) as client:
                return await self._total(client)

        return asyncio.run(once())

    def watch(self, since: float) -> list[tuple[float, int]]:
        """(seconds after ``since``, total) per round, until a round that started with the ingest
        stream empty (every request inserted and the result cache invalidated: the worker does
        both before it acknowledges), or QUERYABLE_TIMEOUT."""

        async def rounds() -> list[tuple[float, int]]:
            seen: list[tuple[float, int]] = []
            async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=60) as client:
                while time.monotonic() - since < QUERYABLE_TIMEOUT:
                    drained = stream_left(VALKEY_URL, self.partitions) == 0
                    total = await self._total(client)
                    seen.append((time.monotonic() - since, total))
                    if drained:
                        break
                    await asyncio.sleep(0.05)
            return seen

        return asyncio.run(rounds())


class VisibilityProbe:
    """Events-visible latency under load: one pageview to a site of its own every 0.25 s, and the
    time from its 202 until the Stats API (``/metrics`` of that site, polled every 50 ms) counts it;
    and the log's depth (``datafast_spool_depth`` of ``GET /metrics``: requests captured and not
    yet in ClickHouse), read every 0.5 s."""

    def __init__(self, url: str, api_key: str, site: str, domain: str) -> None:
        self.url, self.site, self.domain = url, site, domain
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.latencies: list[float] = []
        self.depths: list[tuple[float, int]] = []
        """(when, requests not yet in ClickHouse) read during the load."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> VisibilityProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    async def _run(self) -> None:
        acknowledged: list[float] = []
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as client:
            base = await self._count(client)

            async def send() -> None:
                while not self._stop.is_set():
                    answer = await client.post(
                        "/track",
                        json={"website_id": self.site, "page_url": f"https://{self.domain}/probe"},
                        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"},
                    )
                    if answer.status_code == 202:
                        acknowledged.append(time.monotonic())
                    await asyncio.sleep(0.25)

            async def depth() -> None:
                while not self._stop.is_set():
                    answer = await client.get("/metrics")
                    answer.raise_for_status()
                    for family in text_string_to_metric_families(answer.text):
                        if family.name == "datafast_spool_depth":
                            self.depths.append((time.monotonic(), int(family.samples[0].value)))
                    await asyncio.sleep(0.5)

            sender, sampler = asyncio.create_task(send()), asyncio.create_task(depth())
            seen = 0
            while not self._stop.is_set() or seen < len(acknowledged):
                visible = await self._count(client) - base
                now = time.monotonic()
                while seen < min(visible, len(acknowledged)):
                    self.latencies.append(now - acknowledged[seen])
                    seen += 1
                if self._stop.is_set() and not sender.done():
                    sender.cancel()
                    sampler.cancel()
                if now - (acknowledged[-1] if acknowledged else now) > QUERYABLE_TIMEOUT:
                    break
                await asyncio.sleep(0.05)

    async def _count(self, client: httpx.AsyncClient) -> int:
        answer = await client.get(
            f"/api/v1/sites/{self.site}/metrics", params={"metrics": "pageviews", "period": "7d"}
        )
        answer.raise_for_status()
        return int(answer.json()["totals"]["pageviews"])

    def figures(self) -> dict[str, Any]:
        windows: dict[int, int] = {}
        for when, requests in self.depths:  # the deepest of each 5 s: bounded, or growing?
            window = int((when - self.depths[0][0]) // 5)
            windows[window] = max(windows.get(window, 0), requests)
        depth = {
            "log_depth_max": max(windows.values(), default=None),
            "log_depth_end": self.depths[-1][1] if self.depths else None,
            "log_depth_by_5s": list(windows.values()),
        }
        ordered = sorted(self.latencies)
        if not ordered:
            return {"visible_p50_s": None, "visible_p95_s": None, "visible_probes": 0} | depth
        return {
            "visible_p50_s": round(ordered[len(ordered) // 2], 3),
            "visible_p95_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
            "visible_probes": len(ordered),
        } | depth


def figures(
    mode: str,
    batch: int,
    result: dict[str, float],
    baseline: dict[str, float],
    new_rows: int,
    new_distinct: int,
    rss: float,
) -> dict[str, Any]:
    accepted = int(result["accepted"]) * batch
    events_per_s = accepted / (result["duration_us"] / 1e6)
    baseline_eps = baseline["accepted"] * batch / (baseline["duration_us"] / 1e6)
    return {
        "mode": mode,
        "request": "single" if batch == 1 else f"batch{batch}",
        "events_per_s": round(events_per_s),
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p95_ms": round(result["p95_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "accepted": accepted,
        "stored": new_distinct,
        "lost": max(0, accepted - new_distinct),
        "duplicated": new_rows - new_distinct,
        "non_202": int(result["failed"]) + int(result["errors"]),
        "rss_mb": rss,
        "baseline_events_per_s": round(baseline_eps),
        "ratio_to_baseline": round(events_per_s / baseline_eps, 3),
    }


def drop_views(dsn: str, database: str, cwd: Path, views: list[str]) -> None:
    """Drop materialized views before the server starts (an A/B of what they cost at ingest)."""
    statements = [f"DROP VIEW {database}.{view}" for view in views]
    script = (
        "import clickhouse_connect;"
        f"c=clickhouse_connect.get_client(dsn={dsn!r}, database={database!r}, autogenerate_session_id=False);"
        f"[c.command(s) for s in {statements!r}]"
    )
    subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, check=True, cwd=cwd)


def run_embedded(duration: int, connections: int, without: list[str] | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="datafast-bench-embedded-"))
    try:
        env = embedded_env(work / "data")
        datafast("migrate", env=env, cwd=work)
        if without:
            drop_views(f"chdb://{work / 'data' / 'clickhouse'}", "datafast", work, without)
        sites = create_sites(env, work)
        probe_site = site_id(
            datafast(
                "site", "create", "--domain", PROBE_DOMAIN, "--owner", "bench@example.com", env=env, cwd=work
            )
        )
        datafast("user", "verify", "--email", "bench@example.com", env=env, cwd=work)
        made = datafast(
            "apikey",
            "create",
            "--user",
            "bench@example.com",
            "--read-only",
            "--name",
            "bench",
            env=env,
            cwd=work,
        )
        api_key = made.strip().splitlines()[-1]
        dsn = f"chdb://{work / 'data' / 'clickhouse'}"
        for batch in BATCHES:
            before_rows, before_distinct = count_rows(dsn, "datafast", work, sites)
            server, url = start_serve(env, work)
            try:
                with VisibilityProbe(url, api_key, probe_site, PROBE_DOMAIN) as visibility:
                    cpu_before, started = thread_cpu(server.pid), time.monotonic()
                    result = wrk(url, duration, connections, sites, batch)
                    cpu_after, seconds = thread_cpu(server.pid), time.monotonic() - started
                    rss = rss_mb(server.pid)
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=120)
            rows, distinct = count_rows(dsn, "datafast", work, sites)
            baseline = run_baseline(duration, connections, sites, batch)
            line = figures(
                "embedded", batch, result, baseline, rows - before_rows, distinct - before_distinct, rss
            )
            line |= {"rss_mb_by_process": {"datafast serve": rss}} | visibility.figures()
            line |= cpu_per_event(cpu_before, cpu_after, line["accepted"], seconds)
            if SETTINGS:
                line["settings"] = SETTINGS
            if without is not None:
                line["without_views"] = without
            print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fresh_postgres_database() -> str:
    import asyncpg

    name = f"datafast_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{POSTGRES}/test")
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(f"{POSTGRES}/test")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.close()

    asyncio.run(drop())


def cli(app: Deployment, *args: str) -> str:
    done = app.cli(*args)
    if done.returncode != 0:
        raise RuntimeError(f"datafast {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def run_scaled(duration: int, connections: int, web_processes: int = 1, partitions: int = 1) -> None:
    import valkey

    work = Path(tempfile.mkdtemp(prefix="datafast-bench-scaled-"))
    postgres_url = fresh_postgres_database()
    try:
        valkey.Valkey.from_url(VALKEY_URL).flushdb()  # no stream left from an earlier run
        database = f"datafast_bench_{uuid.uuid4().hex[:8]}"
        env = {
            "CLICKHOUSE_DATABASE": database,
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "STATS_RATE_LIMIT": "1000000",  # the queryable probe polls every site at once
            "WORKERS": str(web_processes),  # `datafast serve` processes behind the one port
            "INGEST_PARTITIONS": str(partitions),
            **SETTINGS,
        }
        sites: list[str] = []
        api_key = probe_site = ""
        with ClickHouseServer(work / "clickhouse") as clickhouse:
            for batch in BATCHES:
                # A new web process and worker per request kind, as embedded mode restarts its server.
                with Deployment(
                    work / "app",
                    "scaled",
                    web=1,
                    workers=1,
                    postgres_url=postgres_url,
                    valkey_url=VALKEY_URL,
                    clickhouse_url=clickhouse.url,
                    **env,
                ) as app:
                    web = app.webs[0]
                    if not sites:
                        # Site 1 (70% of the traffic in track.lua) belongs to a signed-up, verified
                        # user; the other sites are theirs too, so one read-only key reads them all.
                        account = web.account(domain="1.bench.example")
                        sites = [account.site_id] + [
                            site_id(
                                cli(
                                    app,
                                    "site",
                                    "create",
                                    "--domain",
                                    f"{n}.bench.example",
                                    "--owner",
                                    account.email,
                                )
                            )
                            for n in range(2, SITES + 1)
                        ]
                        probe_site = site_id(
                            cli(app, "site", "create", "--domain", PROBE_DOMAIN, "--owner", account.email)
                        )
                        made = cli(
                            app, "apikey", "create", "--user", account.email, "--read-only", "--name", "bench"
                        )
                        api_key = made.strip().splitlines()[-1]
                    before_rows, before_distinct = count_rows(clickhouse.url, database, work, sites)
                    probe = StatsProbe(web.url, api_key, sites, partitions)
                    before_api = probe.total()
                    processes = {
                        "datafast serve": web.process.pid,  # type: ignore[union-attr]
                        **{f"datafast worker {n}": worker.pid for n, worker in enumerate(app.workers)},
                        "clickhouse (test server)": clickhouse.process.pid,  # type: ignore[union-attr]
                        **valkey_pid(),
                    }
                    with VisibilityProbe(web.url, api_key, probe_site, PROBE_DOMAIN) as visibility:
                        cpu_before, started = process_cpu(processes), time.monotonic()
                        result = wrk(web.url, duration, connections, sites, batch)
                        load_end = time.monotonic()
                        cpu_after = process_cpu(processes)
                        rss = rss_mb(web.process.pid)  # type: ignore[union-attr]
                        worker_rss = [rss_mb(worker.pid) for worker in app.workers]
                        clickhouse_rss = rss_mb(clickhouse.process.pid)  # type: ignore[union-attr]
                    rounds = probe.watch(load_end)
                    web.stop()
                    deadline = time.monotonic() + 300
                    while stream_left(VALKEY_URL, partitions) and time.monotonic() < deadline:
                        time.sleep(0.2)
                # Leaving the block stops the worker (SIGTERM: it finishes its batch).
                rows, distinct = count_rows(clickhouse.url, database, work, sites)
                baseline = run_baseline(duration, connections, sites, batch, web_processes)
                line = figures(
                    "scaled", batch, result, baseline, rows - before_rows, distinct - before_distinct, rss
                )
                # Every accepted event, and every event that reached ClickHouse: wrk's count leaves out
                # the requests in flight when it stops (answered 202 and stored, never counted by wrk).
                target = max(line["accepted"], distinct - before_distinct)
                queryable = next((t for t, total in rounds if total - before_api >= target), None)
                line |= {
                    "queryable_s": None if queryable is None else round(queryable, 2),
                    "queryable_polls": len(rounds),
                    "clickhouse": "http (tests/clickhouse_http.py on chDB)",
                    "clickhouse_rss_mb": clickhouse_rss,
                    "web_processes": web_processes,
                    "workers": 1,
                    "partitions": partitions,
                    "rss_mb_by_process": {
                        "datafast serve": rss,
                        **{f"datafast worker {n}": mb for n, mb in enumerate(worker_rss)},
                        "clickhouse (test server)": clickhouse_rss,
                    },
                }
                line |= visibility.figures()
                line |= cpu_per_event(cpu_before, cpu_after, line["accepted"], load_end - started, "process")
                if SETTINGS:
                    line["settings"] = SETTINGS
                print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        drop_postgres_database(postgres_url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["embedded", "scaled", "both"], default="embedded")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--web-processes",
        type=int,
        default=1,
        help="Scaled mode: `datafast serve` processes (WORKERS), and the baseline's, on one port.",
    )
    parser.add_argument("--partitions", type=int, default=1, help="Scaled mode: INGEST_PARTITIONS.")
    parser.add_argument(
        "--compare-views",
        nargs="+",
        metavar="VIEW",
        help="Embedded mode, twice in this run: as migrated, then with these materialized views "
        "dropped (e.g. sessions_local_daily_mv events_local_daily_mv): what they cost at ingest.",
    )
    parser.add_argument(
        "--batch", type=int, nargs="+", default=[1, 100], help="Events per request, one line each [1 100]."
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A setting of the DataFast processes (e.g. INGEST_BATCH_ROWS=5000), repeatable; "
        "the JSON lines name them.",
    )
    args = parser.parse_args()
    BATCHES[:] = args.batch
    for setting in args.set:
        name, equals, value = setting.partition("=")
        if not equals:
            parser.error(f"--set {setting}: expected NAME=VALUE")
        SETTINGS[name] = value
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest.py needs wrk: apt-get install -y wrk")
    if args.compare_views:
        run_embedded(args.duration, args.connections, [])
        run_embedded(args.duration, args.connections, args.compare_views)
    elif args.mode in ("embedded", "both"):
        run_embedded(args.duration, args.connections)
    if args.mode in ("scaled", "both"):
        run_scaled(args.duration, args.connections, args.web_processes, args.partitions)


if __name__ == "__main__":
    main()
