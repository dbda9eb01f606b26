"""`datafast rates load`, run as an operator runs it (its own process and data directory)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import _env, run


def test_rates_load_reads_an_ecb_file_and_refuses_a_bad_one(tmp_path: Path) -> None:
    env = _env(DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="WARNING")
    good = tmp_path / "eurofxref-hist.csv"
    good.write_text("Date,USD,JPY,\n2026-03-10,1.2500,160.00,\n2026-03-09,1.1000,N/A,\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,base,quote,rate\n2026-03-10,USD,EUR,zero\n")

    loaded = run("rates", "load", str(good), env=env, cwd=tmp_path)
    refused = run("rates", "load", str(bad), env=env, cwd=tmp_path)

    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 3 exchange rates" in loaded.stdout
    assert refused.returncode == 1
    assert "line 2" in refused.stderr
