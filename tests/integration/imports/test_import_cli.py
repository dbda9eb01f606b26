"""`datafast import`, run as an operator runs it (a real process): a Umami export lands on a
scaled install and the Stats API shows its visits. (Embedded mode's chDB belongs to one process —
the test's here — so there only the checks before ClickHouse run.)"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.imports.exports import umami_csv
from tests.integration.revenue.conftest import Shop

scaled = pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
embedded = pytest.mark.parametrize("mode", ["embedded"], indirect=True)


def _datafast(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datafast", "import", *args],
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@scaled
async def test_a_umami_export_imported_from_the_command_line_shows_on_the_dashboard(
    shop: Shop, env: dict[str, str], tmp_path: Path
) -> None:
    days = [datetime.now(UTC).date() - timedelta(days=d) for d in (9, 8, 7)]
    data = umami_csv(days, seed=7)
    path = tmp_path / "website_event.csv"
    path.write_bytes(data)
    done = _datafast(env, "umami", str(path), "--site", shop.id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported "), done.stdout
    assert "Custom events: not imported" in done.stdout

    visits = {row["visit_id"] for row in csv.DictReader(io.StringIO(data.decode()))}
    response = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/query",
        json={
            "metrics": ["visits"],
            "date_range": {"start": days[0].isoformat(), "end": days[-1].isoformat()},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["visits"] == len(visits)
    [listed] = (await shop.owner.get(f"/api/v1/sites/{shop.id}/imports")).json()
    assert (listed["status"], listed["source"], listed["requested_by"][:3]) == ("done", "umami", "cli")


@embedded
def test_the_command_line_names_what_is_wrong(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    path.write_bytes(b"no zip here")
    unknown = _datafast(env, "plausible", str(path), "--site", str(uuid.uuid4()))
    assert unknown.returncode == 1
    assert "no site with the id" in unknown.stderr
    wrong = _datafast(env, "matomo", str(path), "--site", str(uuid.uuid4()))
    assert wrong.returncode == 2
    assert "'matomo' is not one of" in wrong.stderr
