"""A tiny run of bench/query.py: it generates, queries through the Stats service and prints one JSON line,
on chDB in process (embedded) and over HTTP (tests/clickhouse_http.py, as in scaled mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("engine", "shown"),
    [("chdb", "chdb (in process)"), pytest.param("http", "http (", marks=pytest.mark.scaled)],
)
def test_query_benchmark_prints_one_json_line(tmp_path: Path, engine: str, shown: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "query.py"),
            "--engine",
            engine,
            "--events",
            "20000",
            "--chunk-events",  # three statements: the chunked generation a 100M run needs
            "7000",
            "--runs",
            "1",
            "--sites",
            "5",
            "--data-dir",
            str(tmp_path / "bench"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert result["engine"].startswith(shown)
    assert 19_000 < result["events"] < 21_000
    for key in ("dashboard_p50_ms", "dashboard_p95_ms", "warm_p50_ms", "warm_p95_ms", "raw_tables_ms"):
        assert result[key] > 0
    assert set(result["queries_median_ms"]) == {
        "aggregate",
        "timeseries",
        "sources",
        "pages",
        "entry_pages",
        "exit_pages",
        "countries",
        "devices",
        "revenue_by_source",
    }
    assert result["warm_p50_ms"] < result["dashboard_p50_ms"]  # the result cache serves the warm runs
