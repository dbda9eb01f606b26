"""Stats API benchmark: a full dashboard over 30 days of a big site, on chDB embedded or over HTTP.

    .venv/bin/python bench/query.py [--events 10000000] [--sites 50] [--runs 7] [--data-dir DIR]
        [--engine chdb|http] [--chunk-events 10000000] [--report-max-seconds 30]
        [--report-max-memory 4000000000]

``--engine chdb`` (the default) runs ClickHouse in this process, as embedded mode does.
``--engine http`` starts tests/clickhouse_http.py (the ClickHouse HTTP interface served by chDB in
its own process, statements one at a time) on the same data directory and reaches it through
``HttpEventStore``, as scaled mode does: the data is generated through it and every figure
includes the HTTP hop (request, result serialisation, clickhouse-connect parsing).

Generates ``--events`` events (≈3 per visit) over 90 days and ``--sites`` sites, 70% of the
visits on one site, straight into ClickHouse with ``INSERT … SELECT FROM numbers()`` and
deterministic hash expressions (the ``sessions`` rows first, then their events from the same
expressions, so both tables agree; the materialized views fill the hourly rollups as they would
at ingest), ``--chunk-events`` events a statement: the visits are numbered, and a chunk is a range
of numbers, so any chunk size gives the same data (one statement over 100M events needed ~72 GB
of temporary disk). Background
merges of the rollups are then let finish (``OPTIMIZE … FINAL``), as on a server that has been
running for a while (fresh hours sit in small parts until merged).

Each run times the dashboard set through ``StatsService`` (the same code the API runs, its reads
under the API's limits, ``--report-max-seconds`` and ``--report-max-memory``):
totals, a daily series, sources, pages, entry pages, exit pages, countries, devices and
revenue by source, for 30 days of the big site in Europe/Paris. "Cold" runs start with an
empty result cache (ClickHouse's own mark cache and the OS page cache stay warm: dropping them
would need root and would hit every other process); "warm" runs repeat with the cache filled.

Prints one JSON line: engine; events; dashboard_p50_ms, dashboard_p95_ms (cold, the queries one
after the other) and dashboard_runs_ms (each cold pass, in order); dashboard_cpu_p50_ms (CPU time of
those passes: of this process, where chDB runs, plus with ``--engine http`` of the server process;
CPU time moves less than wall time on a loaded machine); parallel_p50_ms, parallel_p95_ms (cold, all
at once as a browser sends them); raw_tables_ms (one cold pass without the rollups, the baseline)
and rollups_vs_raw (the cold median over it); without_local_days_p50_ms (the cold passes again once
the site's local-day visitor states are forgotten, so read from the hourly rollups as before
migration 0009: the baseline of that change, same data, same run); sequential_subqueries_p50_ms (the
cold passes with each answer's own queries — events, visits, money — one after the other instead of
at once: the baseline of that change); warm_p50_ms, warm_p95_ms; each query's cold median; the
seconds spent filling the credits (``credits_s``) and the local days (``local_days_s``), which a
running server does as the data arrives; and the load average seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.clickhouse_http import ClickHouseServer  # noqa: E402

from datafast.db.migrate import migrate_clickhouse  # noqa: E402
from datafast.domain.analytics.cache import ResultCache  # noqa: E402
from datafast.domain.analytics.catalog import METRICS  # noqa: E402
from datafast.domain.analytics.credits import Credits  # noqa: E402
from datafast.domain.analytics.local_days import LocalDays  # noqa: E402
from datafast.domain.analytics.queries import AnalyticsQueries  # noqa: E402
from datafast.domain.analytics.schemas import DateRange, OrderBy, QueryRequest  # noqa: E402
from datafast.domain.analytics.service import SiteContext, StatsService  # noqa: E402
from datafast.lib.cache import MemoryCache  # noqa: E402
from datafast.lib.eventstore import ChdbEventStore, EventStore, HttpEventStore, read_limits  # noqa: E402
from datafast.log import configure_logging  # noqa: E402

DATABASE = "bench"
ROLLUPS = ("events_hourly", "sessions_hourly", "events_daily", "sessions_daily")
LOCAL_ROLLUPS = ("events_local_daily", "sessions_local_daily")
FIRST_DAY = "2026-08-01 00:00:00"
EVENTS_PER_VISIT = 2.92  # what the expressions below give on average

PAGES = (
    "['/', '/pricing', '/blog', '/docs', '/about', '/signup', '/blog/a', '/blog/b', '/features', '/contact']"
)
# The visits numbered [start, start + count): the same row for the same number, so that chunks of
# the numbers give the data one statement over all of them would.
SESSION_ROWS = f"""
SELECT
  sites[1 + if(big, 0, 1 + cityHash64(n, 1) % (length(sites) - 1))] AS website_id,
  lower(hex(cityHash64(n, 99))) AS session_id,
  concat(if(big, 'b', 'o'), toString(cityHash64(n, 2) % {{visitors:UInt64}})) AS visitor_id,
  1 AS sign, 1 AS version,
  toDateTime64({{first:String}}, 3, 'UTC') + toIntervalSecond(cityHash64(n, 3) % (90 * 86400)) AS started_at,
  started_at + toIntervalSecond(duration) AS ended_at,
  toUInt32(if(pv = 1 AND extra = 0, 0, pv * 30 + cityHash64(n, 8) % 60)) AS duration,
  pv AS pageviews, pv + extra AS events, pv + extra = 1 AS is_bounce,
  'www.example.com' AS hostname,
  pages[1 + entry] AS entry_page, pages[1 + (entry + (pv - 1) * 7) % 10] AS exit_page,
  src.3 AS referrer, src.1 AS referrer_source, src.2 AS channel,
  if(src.2 = 'email', 'newsletter', '') AS utm_source, if(src.2 = 'email', 'email', '') AS utm_medium,
  if(src.2 = 'email', 'autumn', '') AS utm_campaign, '' AS utm_term, '' AS utm_content,
  ['Chrome', 'Safari', 'Firefox', 'Edge'][1 + cityHash64(n, 10) % 4] AS browser,
  ['Mac', 'Windows', 'iOS', 'Android', 'Linux'][1 + cityHash64(n, 11) % 5] AS os,
  ['desktop', 'mobile', 'tablet'][1 + cityHash64(n, 12) % 3] AS device,
  ['US', 'FR', 'DE', 'GB', 'IN', 'BR', 'JP'][1 + cityHash64(n, 13) % 7] AS country,
  '' AS region, '' AS city,
  extra AS goals, toInt64(purchase * (1000 + cityHash64(n, 14) % 9000)) AS revenue
FROM (
  SELECT number AS n, cityHash64(number, 1) % 100 < 70 AS big,
    toUInt32(1 + if(cityHash64(number, 4) % 100 < 40, 0, cityHash64(number, 5) % 7)) AS pv,
    cityHash64(number, 15) % 10 = 0 AS goal, cityHash64(number, 16) % 50 = 0 AS purchase,
    toUInt32(goal + purchase) AS extra, cityHash64(number, 7) % 10 AS entry,
    {{sites:Array(UUID)}} AS sites, {PAGES} AS pages,
    [('Google', 'search', 'https://www.google.com/'), ('Direct', 'direct', ''),
     ('Twitter', 'social', 'https://t.co/'), ('Hacker News', 'referral', 'https://news.ycombinator.com/'),
     ('Bing', 'search', 'https://www.bing.com/'), ('Newsletter', 'email', '')]
     [1 + cityHash64(number, 6) % 6] AS src
  FROM numbers({{start:UInt64}}, {{count:UInt64}})
)
"""
SESSIONS_SQL = f"INSERT INTO sessions {SESSION_ROWS}"
EVENTS_SQL = f"""
INSERT INTO events (website_id, event_id, event_type, timestamp, visitor_id, session_id, hostname, pathname,
  page_url, referrer, referrer_source, channel, utm_source, utm_medium, utm_campaign, browser, os, device,
  country, goal_name, revenue, currency)
SELECT website_id, generateUUIDv4(i),
  multiIf(i < pageviews, 'pageview', i < pageviews + goals - (revenue > 0), 'goal', 'purchase') AS type,
  started_at + toIntervalSecond(intDiv(duration * i, greatest(events - 1, 1))),
  visitor_id, session_id, hostname,
  pages[1 + (indexOf(pages, entry_page) - 1 + least(i, pageviews - 1) * 7) % 10] AS path,
  concat('https://', hostname, path),
  if(i = 0, referrer, ''), if(i = 0, referrer_source, ''), if(i = 0, channel, 'internal'),
  if(i = 0, utm_source, ''), if(i = 0, utm_medium, ''), if(i = 0, utm_campaign, ''),
  browser, os, device, country, if(type = 'goal', 'signup', ''),
  if(type = 'purchase', revenue, 0), if(type = 'purchase', 'EUR', '')
FROM (SELECT *, {PAGES} AS pages FROM ({SESSION_ROWS})) ARRAY JOIN range(events) AS i
"""


def dashboard(stats: StatsService, site: SiteContext) -> dict[str, Callable[[], Awaitable[Any]]]:
    month = DateRange(date(2026, 9, 1), date(2026, 9, 30))

    def breakdown(
        dimension: str, metrics: list[str], order: str | None = None
    ) -> Callable[[], Awaitable[Any]]:
        request = QueryRequest(
            metrics=metrics,
            dimensions=[dimension],
            date_range=month,
            limit=10,
            order_by=[OrderBy(field=order)] if order else [],
        )
        return lambda: stats.query(site, request)

    totals = QueryRequest(metrics=list(METRICS), date_range=month)
    return {
        "aggregate": lambda: stats.query(site, totals),
        # As the dashboard asks for its chart (GET /timeseries: the series without totals).
        "timeseries": lambda: stats.timeseries(
            site, month, [], "day", ["visitors", "visits", "pageviews", "revenue"]
        ),
        "sources": breakdown("source", ["visitors", "visits", "bounce_rate", "visit_duration"]),
        "pages": breakdown("page", ["visitors", "pageviews"]),
        "entry_pages": breakdown("entry_page", ["visitors", "visits", "bounce_rate"]),
        "exit_pages": breakdown("exit_page", ["visits", "pageviews", "bounce_rate"]),
        "countries": breakdown("country", ["visitors", "visits"]),
        "devices": breakdown("device", ["visitors", "visits"]),
        "revenue_by_source": breakdown(
            "source", ["revenue", "visitors", "conversions", "revenue_per_visitor"], order="revenue"
        ),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system, every thread) of another process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace, path: Path, server: ClickHouseServer | None) -> dict[str, Any]:
    store: EventStore
    # Reads under the limits the API runs them with (the app's REPORT_MAX_SECONDS, REPORT_MAX_MEMORY).
    limits = read_limits(args.report_max_seconds, args.report_max_memory)
    if server is None:
        store = ChdbEventStore(str(path / "clickhouse"), DATABASE, limits=limits)
    else:
        # A long read timeout: generating 10M+ events takes statements of minutes.
        store = HttpEventStore(
            f"{server.url}/?send_receive_timeout=3600", DATABASE, cluster=None, limits=limits
        )
    server_pid = server.process.pid if server is not None and server.process is not None else None

    def cpu_s() -> float:
        return time.process_time() + (process_cpu_s(server_pid) if server_pid is not None else 0.0)

    try:
        await store.ensure_database()
        await migrate_clickhouse(store)
        await store.open()  # as the app does at start: every pool thread connected before the first read
        sites = [str(uuid.UUID(int=i + 1)) for i in range(args.sites)]
        visits = max(1, round(args.events / EVENTS_PER_VISIT))
        started = time.perf_counter()
        reused = args.reuse and int(await store.command("SELECT count() FROM events")) > 0
        if not reused:
            # In chunks of visits (about --chunk-events events each): one statement over 100M events
            # needed ~72 GB of temporary disk; a chunk needs what its own rows do.
            chunk = max(1, round(args.chunk_events / EVENTS_PER_VISIT))
            for start in range(0, visits, chunk):
                values = {
                    "start": start,
                    "count": min(chunk, visits - start),
                    "visitors": max(1, visits // 3),
                    "first": FIRST_DAY,
                    "sites": sites,
                }
                await store.command(SESSIONS_SQL, values)
                await store.command(EVENTS_SQL, values)
        generated = time.perf_counter() - started
        for table in ROLLUPS:
            await store.command(f"OPTIMIZE TABLE {DATABASE}.{table} FINAL")
        events = int(await store.command("SELECT count() FROM events"))
        site = SiteContext(sites[0], "Europe/Paris", "EUR")
        # What a running server keeps as the data arrives: the money's credited visits (processing
        # and the payment writer) and the site's local-day visitor states (the local_days job).
        t = time.perf_counter()
        await Credits(store).backfill()
        # Merged, as on a running server (a refresh writes new versions of a few credits; every
        # run of this benchmark writes a version of each, which a read FINAL would dedupe).
        await store.command(f"OPTIMIZE TABLE {DATABASE}.credits FINAL")
        credits_s = time.perf_counter() - t
        t = time.perf_counter()
        await LocalDays(store, settle=0).prepare(site.id, site.timezone)
        for table in LOCAL_ROLLUPS:
            await store.command(f"OPTIMIZE TABLE {DATABASE}.{table} FINAL")
        local_days_s = time.perf_counter() - t
        prepared = time.perf_counter() - started

        cold: list[float] = []
        cpu: list[float] = []  # chDB's CPU time (this process, or the server's): steadier than wall time
        parallel: list[float] = []
        warm: list[float] = []
        per_query: dict[str, list[float]] = {}
        local = LocalDays(store)  # the server's, one per process (which offsets are ready, for 2 s)
        for _ in range(args.runs):
            # A new, empty result cache each run: the first pass is cold, the second warm.
            stats = StatsService(
                AnalyticsQueries(store, local_days=local), ResultCache(MemoryCache(), ttl=300)
            )
            queries = dashboard(stats, site)
            total = 0.0
            cpu_start = cpu_s()
            for name, query in queries.items():
                t = time.perf_counter()
                await query()
                elapsed = (time.perf_counter() - t) * 1000
                per_query.setdefault(name, []).append(elapsed)
                total += elapsed
            cold.append(total)
            cpu.append((cpu_s() - cpu_start) * 1000)
            t = time.perf_counter()
            for query in queries.values():
                await query()
            warm.append((time.perf_counter() - t) * 1000)
            # As a browser loads a dashboard: every request at once, on a new cold cache.
            stats = StatsService(
                AnalyticsQueries(store, local_days=local), ResultCache(MemoryCache(), ttl=300)
            )
            t = time.perf_counter()
            await asyncio.gather(*(query() for query in dashboard(stats, site).values()))
            parallel.append((time.perf_counter() - t) * 1000)
        # The same cold passes with each answer's queries one after the other (events, visits,
        # money): what running them at once saves, measured in this run.
        one_by_one: list[float] = []
        for _ in range(args.runs):
            stats = StatsService(
                AnalyticsQueries(store, local_days=local),
                ResultCache(MemoryCache(), ttl=300),
                concurrent=False,
            )
            t = time.perf_counter()
            for query in dashboard(stats, site).values():
                await query()
            one_by_one.append((time.perf_counter() - t) * 1000)
        # The same dashboard without the rollups (raw tables only), once, as the baseline.
        stats = StatsService(AnalyticsQueries(store, rollups=False), None)
        t = time.perf_counter()
        for query in dashboard(stats, site).values():
            await query()
        raw = (time.perf_counter() - t) * 1000
        # The same cold passes with the site's local days forgotten (read from the hourly rollups,
        # as before migration 0009): what the local-day states save, measured in this run.
        await LocalDays(store, remember=0).reset(site.id)
        hourly: list[float] = []
        hourly_per_query: dict[str, list[float]] = {}
        local = LocalDays(store)
        for _ in range(args.runs):
            stats = StatsService(
                AnalyticsQueries(store, local_days=local), ResultCache(MemoryCache(), ttl=300)
            )
            total = 0.0
            for name, query in dashboard(stats, site).items():
                t = time.perf_counter()
                await query()
                elapsed = (time.perf_counter() - t) * 1000
                hourly_per_query.setdefault(name, []).append(elapsed)
                total += elapsed
            hourly.append(total)
        return {
            "engine": "chdb (in process)" if server is None else "http (tests/clickhouse_http.py on chDB)",
            "events": events,
            "sites": args.sites,
            "dashboard_p50_ms": round(statistics.median(cold), 1),
            "dashboard_p95_ms": round(percentile(cold, 0.95), 1),
            "dashboard_runs_ms": [round(x) for x in cold],
            "dashboard_cpu_p50_ms": round(statistics.median(cpu), 1),
            "parallel_p50_ms": round(statistics.median(parallel), 1),
            "parallel_p95_ms": round(percentile(parallel, 0.95), 1),
            "sequential_subqueries_p50_ms": round(statistics.median(one_by_one), 1),
            "raw_tables_ms": round(raw, 1),
            "rollups_vs_raw": round(statistics.median(cold) / raw, 3),
            "without_local_days_p50_ms": round(statistics.median(hourly), 1),
            "without_local_days_queries_median_ms": {
                name: round(statistics.median(v), 1) for name, v in hourly_per_query.items()
            },
            "warm_p50_ms": round(statistics.median(warm), 2),
            "warm_p95_ms": round(percentile(warm, 0.95), 2),
            "queries_median_ms": {name: round(statistics.median(v), 1) for name, v in per_query.items()},
            "runs": args.runs,
            "generate_s": round(generated, 1),
            "prepare_s": round(prepared, 1),
            "credits_s": round(credits_s, 1),
            "local_days_s": round(local_days_s, 1),
            "load_avg_1m": os.getloadavg()[0],
            "cpus": os.cpu_count(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate (e.g. 100000000)")
    parser.add_argument(
        "--chunk-events",
        type=int,
        default=10_000_000,
        help="events generated per statement (the visits of the data are the same for any size)",
    )
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument(
        "--report-max-seconds", type=float, default=30.0, help="as REPORT_MAX_SECONDS (0: none)"
    )
    parser.add_argument(
        "--report-max-memory", type=int, default=4_000_000_000, help="as REPORT_MAX_MEMORY (0: none)"
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="kept after the run (default: a temp dir)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --data-dir: time the events already there instead of generating new ones",
    )
    parser.add_argument(
        "--engine",
        choices=["chdb", "http"],
        default="chdb",
        help="chdb: in this process (embedded mode); http: a ClickHouse HTTP server on chDB (scaled mode)",
    )
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    path = args.data_dir or Path(tempfile.mkdtemp(prefix="datafast-bench-query-"))
    try:
        if args.engine == "http":
            with ClickHouseServer(path / "clickhouse", log=path / "clickhouse-http.log") as server:
                result = asyncio.run(run(args, path, server))
        else:
            result = asyncio.run(run(args, path, None))
    finally:
        if args.data_dir is None:
            shutil.rmtree(path, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
