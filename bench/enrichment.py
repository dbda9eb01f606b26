"""Micro-benchmark of the per-event enrichment steps of POST /track.

    .venv/bin/python bench/enrichment.py [--rounds 200]

For each function it prints the median µs per call on repeated realistic inputs (a small
pool cycled, as on a live site: cache hits) and on cold inputs (every input unique: cache
misses), plus one-off start-up costs.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 Edg/131.0.2903.70",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.38.108;FBBV/620061745;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;"
    "FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
]
REFERRERS: list[tuple[str, dict[str, str]]] = [
    ("", {}),
    ("https://www.google.com/", {}),
    ("https://news.ycombinator.com/item?id=42", {}),
    ("https://t.co/abc", {}),
    ("https://www.example.com/pricing", {}),
    ("https://someblog.io/post/1", {}),
    ("", {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}),
    ("https://l.facebook.com/", {"fbclid": "IwAR0abc"}),
    ("https://www.bing.com/", {"msclkid": "abc"}),
    ("https://duckduckgo.com/", {}),
]
SITE = frozenset({"example.com"})


def _public_ips(rng: random.Random, count: int) -> list[str]:
    ips: list[str] = []
    while len(ips) < count:
        if rng.random() < 0.7:
            address: Any = ipaddress.IPv4Address(rng.getrandbits(32))
        else:
            address = ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124))  # 2000::/4
        if address.is_global and not address.is_multicast:
            ips.append(str(address))
    return ips


def _cold_uas(count: int) -> list[str]:
    """Realistic unique UAs: the pool's strings with one version number changed (WebKit build, rv…)."""
    out = []
    for i in range(count):
        base = UAS[i % len(UAS)]
        # the second "name/major.minor" token (the first is Mozilla/5.0)
        out.append(re.sub(r"(/\d+\.)\d+", lambda m, i=i: f"{m.group(1)}{1000 + i}", base, count=2))
    assert len(set(out)) == count
    return out


def _repeated(fn: Callable[[Any], object], pool: Sequence[Any], rounds: int) -> float:
    """Median µs per call over rounds of cycling through the (pre-warmed) pool."""
    for item in pool:
        fn(item)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for item in pool:
            fn(item)
        samples.append((time.perf_counter_ns() - start) / len(pool) / 1000)
    return statistics.median(samples)


def _cold(fn: Callable[[Any], object], inputs: Sequence[Any]) -> tuple[float, float]:
    """Median and 99th percentile µs of single calls on never-seen inputs."""
    samples = []
    for item in inputs:
        start = time.perf_counter_ns()
        fn(item)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cold", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(42)

    start = time.perf_counter()
    from datafast.lib.ua import parse_user_agent

    ua_import = time.perf_counter() - start
    start = time.perf_counter()
    from datafast.lib.geo import BundledGeoLocator

    geo = BundledGeoLocator()
    geo_load = time.perf_counter() - start
    start = time.perf_counter()
    from datafast.domain.ingest.process.referrers import classify

    ref_import = time.perf_counter() - start
    from datafast.lib.clientip import TrustedProxies, client_ip

    trusted = TrustedProxies("127.0.0.1/32,10.0.0.0/8")

    print(f"start-up: ua import {ua_import * 1000:.0f} ms, bundled geo load {geo_load * 1000:.0f} ms, "
          f"referrers import {ref_import * 1000:.0f} ms")  # fmt: skip
    rows: list[tuple[str, float, float, float]] = []

    cold_uas = _cold_uas(args.cold)
    rows.append(
        (
            "parse_user_agent",
            _repeated(parse_user_agent, UAS, args.rounds),
            *_cold(parse_user_agent, cold_uas),
        )
    )

    ip_pool = _public_ips(rng, 200)
    rows.append(("BundledGeoLocator.locate", _repeated(geo.locate, ip_pool, args.rounds),
                 *_cold(geo.locate, _public_ips(rng, args.cold))))  # fmt: skip

    def classify_one(item: tuple[str, dict[str, str]]) -> object:
        return classify(item[0], item[1], SITE)

    cold_refs = [(f"https://blog{i}.example-{i}.net/post/{i}", {}) for i in range(args.cold)]
    rows.append(
        ("classify", _repeated(classify_one, REFERRERS, args.rounds), *_cold(classify_one, cold_refs))
    )

    def client_one(forwarded: str) -> object:
        return client_ip("10.0.0.3", forwarded, trusted)

    xff_pool = [f"{ip}, 10.0.0.2" for ip in ip_pool]
    cold_xff = [f"{ip}, 10.0.0.2" for ip in _public_ips(rng, args.cold)]
    rows.append(("client_ip (trusted peer, 2 hops)", _repeated(client_one, xff_pool, args.rounds),
                 *_cold(client_one, cold_xff)))  # fmt: skip

    print(f"{'function':36} {'repeated µs':>12} {'cold µs p50':>12} {'cold µs p99':>12}")
    for name, repeated, cold_median, cold_p99 in rows:
        print(f"{name:36} {repeated:12.2f} {cold_median:12.2f} {cold_p99:12.2f}")


if __name__ == "__main__":
    main()
