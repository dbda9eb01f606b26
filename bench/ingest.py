"""Ingest benchmark: wrk drives POST /track on a real DataFast; then every row is counted.

    .venv/bin/python bench/ingest.py [--mode embedded|scaled|both] [--duration 20] [--connections 64]

Per mode it prints two JSON lines (single-event requests, then batches of 100 events):
mode, events_per_s, p50_ms, p95_ms, p99_ms, accepted, stored, lost, duplicated, rss_mb,
baseline_events_per_s, ratio_to_baseline. The baseline is a bare granian + msgspec ASGI
handler measured in the same run with the same load. Needs wrk (apt-get install wrk);
scaled mode needs PostgreSQL and Redis/Valkey on localhost (chDB stands in for ClickHouse).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SITES = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (granian runs the app in a child)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
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


def datafast_env(mode: str, data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {
        **keep,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "TRUSTED_PROXIES": "127.0.0.1/32",
    }
    if mode == "scaled":
        import asyncio

        import asyncpg

        name = f"datafast_bench_{uuid.uuid4().hex[:8]}"

        async def create() -> None:
            conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        asyncio.run(create())
        import valkey

        valkey.Valkey.from_url("redis://127.0.0.1:6379/9").flushdb()  # no stream left from an earlier run
        env |= {
            "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
            "VALKEY_URL": "redis://127.0.0.1:6379/9",
            "MIGRATE_ON_START": "true",
        }
    return env


def datafast(*args: str, env: dict[str, str], cwd: Path) -> str:
    return subprocess.run(
        [PYTHON, "-m", "datafast", *args], env=env, cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def create_sites(env: dict[str, str], cwd: Path) -> list[str]:
    datafast("user", "create", "--email", "bench@example.com", "--password", "password1", env=env, cwd=cwd)
    ids = []
    for n in range(1, SITES + 1):
        out = datafast(
            "site",
            "create",
            "--domain",
            f"{n}.bench.example",
            "--owner",
            "bench@example.com",
            env=env,
            cwd=cwd,
        )
        match = re.search(r"\(([0-9a-f-]{36})\)", out)
        assert match is not None, out
        ids.append(match[1])
    return ids


def count_rows(env: dict[str, str], cwd: Path) -> tuple[int, int]:
    """(rows, distinct event ids) in ClickHouse, read once the server has stopped."""
    dsn = env.get("CLICKHOUSE_URL", f"chdb://{env['DATA_DIR']}/clickhouse")
    script = (
        "import clickhouse_connect,sys;"
        f"c=clickhouse_connect.get_client(dsn='{dsn}', database='datafast');"
        "r=c.query('SELECT count(), uniqExact(event_id) FROM events').result_rows[0];print(r[0], r[1])"
    )
    out = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, check=True, cwd=cwd).stdout
    rows, distinct = out.split()
    return int(rows), int(distinct)


def run_baseline(duration: int, connections: int, sites: list[str], batch: int) -> dict[str, float]:
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
            "1",
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


def stream_left(url: str) -> int:
    """Scaled mode: requests in the ingest stream not yet inserted (entries + pending deliveries)."""
    import valkey

    client = valkey.Valkey.from_url(url)
    try:
        length = int(client.xlen("datafast:ingest"))
        groups = client.xinfo_groups("datafast:ingest") if length or client.exists("datafast:ingest") else []
        return length + sum(int(g["pending"]) for g in groups)
    finally:
        client.close()


def start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "-m", "datafast", "worker"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_mode(mode: str, duration: int, connections: int) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"datafast-bench-{mode}-"))
    try:
        env = datafast_env(mode, work / "data")
        datafast("migrate", env=env, cwd=work)
        sites = create_sites(env, work)
        # Scaled mode: web processes only append to the Valkey stream and a `datafast worker` inserts.
        # chDB cannot share one directory between processes (a ClickHouse server would be shared),
        # so here the worker writes to its own chDB directory, where the rows are counted.
        worker_env = {**env, "CLICKHOUSE_URL": f"chdb://{work / 'data' / 'worker-clickhouse'}"}
        if mode == "scaled":
            datafast("migrate", env=worker_env, cwd=work)
        count_env = worker_env if mode == "scaled" else env
        for batch in (1, 100):
            before_rows, before_distinct = count_rows(count_env, work)
            port = free_port()
            worker = start_worker(worker_env, work) if mode == "scaled" else None
            server = subprocess.Popen(
                [PYTHON, "-m", "datafast", "serve", "--port", str(port)],
                env=env,
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_ready(f"http://127.0.0.1:{port}/readyz")
                result = wrk(f"http://127.0.0.1:{port}", duration, connections, sites, batch)
                rss = rss_mb(server.pid)
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=120)
            if worker is not None:
                deadline = time.monotonic() + 300
                while stream_left(env["VALKEY_URL"]) and time.monotonic() < deadline:
                    time.sleep(0.2)
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=120)
            rows, distinct = count_rows(count_env, work)
            baseline = run_baseline(duration, connections, sites, batch)
            accepted = int(result["accepted"]) * batch
            seconds = result["duration_us"] / 1e6
            events_per_s = accepted / seconds
            baseline_eps = baseline["accepted"] * batch / (baseline["duration_us"] / 1e6)
            new_rows, new_distinct = rows - before_rows, distinct - before_distinct
            print(
                json.dumps(
                    {
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
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["embedded", "scaled", "both"], default="embedded")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest.py needs wrk: apt-get install -y wrk")
    for mode in ["embedded", "scaled"] if args.mode == "both" else [args.mode]:
        run_mode(mode, args.duration, args.connections)


if __name__ == "__main__":
    main()
