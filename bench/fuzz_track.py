"""Fuzz POST /track on a live embedded DataFast (``datafast serve``) over real HTTP.

    .venv/bin/python bench/fuzz_track.py [--bodies 100000] [--connections 8] [--seed 1]

Sends hostile bodies (tests/trackfuzz.py: random bytes, invalid UTF-8, truncated JSON, deep
nesting, huge strings, random field values, some valid events) over keep-alive connections and
prints ONE JSON line: bodies, statuses, server_errors_5xx, dropped_connections, unexpected
(statuses other than 202/400/404/413/415), unhandled_errors_logged, server_alive, elapsed_s,
bodies_per_s, by_kind. A dropped connection is any transport error (reset, closed mid-response,
timeout). The goal is no 5xx and 0 dropped connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import LiveServer  # noqa: E402
from tests.trackfuzz import make_body  # noqa: E402

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
EXPECTED = {202, 400, 404, 413, 415}
CONTENT_TYPES = ["application/json", "text/plain", "text/plain;charset=UTF-8", ""]


async def run(
    url: str, site: str, domain: str, bodies: int, connections: int, seed: int
) -> dict[str, object]:
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    by_kind: dict[str, Counter[int]] = {}
    dropped: list[str] = []
    left = iter(range(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in left:
            kind, body = make_body(rng, site, domain)
            content_type = rng.choice(CONTENT_TYPES)
            headers = {"user-agent": CHROME}
            if content_type:
                headers["content-type"] = content_type
            try:
                response = await client.post("/track", content=body, headers=headers)
            except httpx.TransportError as exc:
                dropped.append(f"{kind}: {exc!r}")
                continue
            statuses[response.status_code] += 1
            by_kind.setdefault(kind, Counter())[response.status_code] += 1

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return {
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "dropped_connections": len(dropped),
        "dropped_examples": dropped[:5],
        "unexpected": sum(v for k, v in statuses.items() if k not in EXPECTED),
        "by_kind": {k: {str(s): n for s, n in sorted(c.items())} for k, c in sorted(by_kind.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bodies", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-track-") as tmp,
        LiveServer(Path(tmp) / "data", LOG_LEVEL="ERROR") as server,
    ):
        account = server.account()
        started = time.monotonic()
        figures = asyncio.run(
            run(server.url, account.site_id, account.domain, args.bodies, args.connections, args.seed)
        )
        elapsed = time.monotonic() - started
        alive = server.alive()
        unhandled = sum("unhandled error" in line for line in server.log().splitlines())
    print(
        json.dumps(
            {
                "bodies": args.bodies,
                "connections": args.connections,
                **figures,
                "unhandled_errors_logged": unhandled,
                "server_alive": alive,
                "elapsed_s": round(elapsed, 1),
                "bodies_per_s": round(args.bodies / elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
