"""Sign-up burst benchmark: does a flood of sign-ups (argon2 hashing) stall the rest of the server?

    .venv/bin/python bench/signup_burst.py [--signups 100] [--probe-interval 0.02]

Starts a real embedded DataFast (`datafast serve`), then fires ``--signups`` sign-ups at once
while one probe loop measures ``GET /healthz`` and another ``POST /track``, each one request at
a time. The same probes first run for the same time with no burst (the baseline, same process).
Sign-up limits are raised for the run: the point is the hashing cost, not the throttle.
Prints one JSON line: signups, signup statuses, burst_s, and per probe p50/p95/max in ms during
the burst and at baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import free_port, wait_ready  # noqa: E402

PASSWORD = "burst password 1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else 0.0,
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "max_ms": round(max(latencies, default=0) * 1000, 1),
    }


async def probe(
    client: httpx.AsyncClient, send: object, until: asyncio.Event, interval: float
) -> list[float]:
    latencies: list[float] = []
    while not until.is_set():
        started = time.perf_counter()
        response = await send(client)  # type: ignore[operator]
        latencies.append(time.perf_counter() - started)
        assert response.status_code < 300, response.text
        await asyncio.sleep(interval)
    return latencies


async def run(url: str, signups: int, interval: float) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as setup:
        owner = await setup.post(
            "/api/v1/auth/signup", json={"email": "owner@bench.test", "password": PASSWORD}
        )
        csrf = setup.cookies["datafast_csrf"]
        site = await setup.post(
            "/api/v1/sites", json={"domain": "bench.test"}, headers={"x-csrf-token": csrf}
        )
        assert owner.status_code == 201, owner.text
        assert site.status_code == 201, site.text
        site_id = site.json()["id"]

    def healthz(client: httpx.AsyncClient) -> object:
        return client.get("/healthz")

    def track(client: httpx.AsyncClient) -> object:
        body = {
            "website_id": site_id,
            "event_type": "pageview",
            "page_url": "https://bench.test/",
            "visitor_id": uuid.uuid4().hex,
        }
        return client.post(
            "/track", json=body, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131"}
        )

    async def probes(duration_or_event: asyncio.Event) -> tuple[list[float], list[float]]:
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as a,
            httpx.AsyncClient(base_url=url, timeout=30) as b,
        ):
            return await asyncio.gather(
                probe(a, healthz, duration_or_event, interval), probe(b, track, duration_or_event, interval)
            )

    # The burst: every sign-up on its own connection, all at once.
    async def burst() -> tuple[list[int], float]:
        started = time.perf_counter()

        async def one(n: int) -> int:
            async with httpx.AsyncClient(base_url=url, timeout=300) as client:
                response = await client.post(
                    "/api/v1/auth/signup",
                    json={"email": f"burst{n}-{uuid.uuid4().hex[:6]}@bench.test", "password": PASSWORD},
                )
                return response.status_code

        statuses = await asyncio.gather(*(one(n) for n in range(signups)))
        return list(statuses), time.perf_counter() - started

    done = asyncio.Event()
    probing = asyncio.create_task(probes(done))
    statuses, burst_s = await burst()
    done.set()
    during_health, during_track = await probing

    # Baseline: the same probes for as long, nothing else running.
    quiet = asyncio.Event()
    baseline_task = asyncio.create_task(probes(quiet))
    await asyncio.sleep(min(burst_s, 15))
    quiet.set()
    base_health, base_track = await baseline_task

    return {
        "signups": signups,
        "signup_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "burst_s": round(burst_s, 2),
        "cpus": os.cpu_count(),
        "healthz_during": summary(during_health),
        "track_during": summary(during_track),
        "healthz_baseline": summary(base_health),
        "track_baseline": summary(base_track),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signups", type=int, default=100)
    parser.add_argument("--probe-interval", type=float, default=0.02)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="datafast-signup-bench-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DATA_DIR": tmp,
            "LOG_LEVEL": "WARNING",
            "SIGNUP_LIMIT_PER_IP": "100000",
            "SIGNUP_LIMIT_PER_DOMAIN": "100000",
            "BASE_URL": f"http://127.0.0.1:{port}",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "datafast", "serve", "--port", str(port)], env=env, cwd=tmp
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/readyz")
            figures = asyncio.run(run(url, args.signups, args.probe_interval))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
