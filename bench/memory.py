"""Bounded memory: millions of distinct client-chosen visitor ids sent to an embedded DataFast.

    .venv/bin/python bench/memory.py [--visitors 5000000] [--connections 8]

Starts ``datafast serve`` (embedded, defaults: ``INGEST_SESSION_MEMORY`` 200,000 open visits),
sends every visitor one pageview with its own ``visitor_id`` in batches of 100, samples the
server's resident memory every second, then counts what reached ClickHouse. Prints ONE JSON line:
visitors, events_per_s, accepted, stored, rss_mb_start, rss_mb_max, rss_mb_end, rss_mb_after_1m
(the sample after the first million visitors: what a bound looks like is that max stays near it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    count_rows,
    create_sites,
    datafast,
    embedded_env,
    rss_mb,
    start_serve,
)

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


async def send(url: str, site: str, visitors: int, connections: int, sent: list[int]) -> int:
    accepted = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for start in range(0, visitors, 100):
        queue.put_nowait(start)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            start = queue.get_nowait()
            body = [
                {"website_id": site, "page_url": "https://1.bench.example/", "visitor_id": f"m{n}"}
                for n in range(start, min(start + 100, visitors))
            ]
            for _ in range(100):  # 503 + Retry-After under backpressure: wait and send again
                answer = await client.post("/track", json=body, headers={"User-Agent": UA})
                if answer.status_code != 503:
                    break
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            answer.raise_for_status()
            accepted += len(body)
            sent[0] = accepted

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--visitors", type=int, default=5_000_000)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="datafast-bench-memory-"))
    try:
        env = embedded_env(work / "data")
        datafast("migrate", env=env, cwd=work)
        sites = create_sites(env, work)[:1]
        server, url = start_serve(env, work)
        samples: list[tuple[int, float]] = []
        sent = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(1.0):
                samples.append((sent[0], rss_mb(server.pid)))

        try:
            start_rss = rss_mb(server.pid)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            accepted = asyncio.run(send(url, sites[0], args.visitors, args.connections, sent))
            elapsed = time.monotonic() - started
            time.sleep(3)  # the last batches processed
            stop.set()
            sampler.join()
            end_rss = rss_mb(server.pid)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=300)
        _, stored = count_rows(f"chdb://{work / 'data' / 'clickhouse'}", "datafast", work, sites)
        after_1m = next((mb for count, mb in samples if count >= 1_000_000), None)
        print(
            json.dumps(
                {
                    "visitors": args.visitors,
                    "events_per_s": round(accepted / elapsed),
                    "accepted": accepted,
                    "stored": stored,
                    "rss_mb_start": start_rss,
                    "rss_mb_after_1m": after_1m,
                    "rss_mb_max": max((mb for _, mb in samples), default=None),
                    "rss_mb_end": end_rss,
                }
            ),
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
