"""`datafast privacy export|erase`, run as an operator runs it (a real process) against a scaled
install the test fills through /track and the Payments API. (Embedded mode's chDB belongs to one
process — the test's here — so there only the checks before ClickHouse run.)"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.privacy.test_privacy import _key, _pay, _unique
from tests.integration.revenue.conftest import Shop

scaled = pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
embedded = pytest.mark.parametrize("mode", ["embedded"], indirect=True)


def _datafast(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", **env}
    return subprocess.run(
        [sys.executable, "-m", "datafast", "privacy", *args],
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@scaled
async def test_export_then_erase_from_the_command_line(
    shop: Shop, env: dict[str, str], tmp_path: Path
) -> None:
    visitor, other = _unique("v-cli"), _unique("v-other")
    for who, path in ((visitor, "/"), (visitor, "/pricing"), (other, "/")):
        await shop.visit(who, path=path, session_id=f"s-{who}")
    await shop.drained()
    await shop.wait_for_sessions(2)
    await _pay(shop, await _key(shop), amount=30, transaction_id="tx-cli", visitor_id=visitor)

    out = tmp_path / "export.json"
    exported = _datafast(env, "export", "--site", shop.id, "--visitor-id", visitor, "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "1 visitor ids, " in exported.stderr
    body = json.loads(out.read_text())
    assert body["visitor_ids"] == [visitor]
    assert sorted(e["pathname"] for e in body["tables"]["events"]) == ["/", "/pricing"]
    assert [p["transaction_id"] for p in body["tables"]["payments"]] == ["tx-cli"]

    declined = _datafast(env, "erase", "--site", shop.id, "--visitor-id", visitor, stdin="n\n")
    assert declined.returncode == 1
    assert "Aborted" in declined.stderr
    # A visit is one row, or three (+1, -1, +1) when its pageviews were processed in two batches.
    session_rows = len(body["tables"]["sessions"])
    assert sum(row["sign"] for row in body["tables"]["sessions"]) == 1
    erased = _datafast(env, "erase", "--site", shop.id, "--visitor-id", visitor, "--yes")
    assert erased.returncode == 0, erased.stderr
    # Derived rows (the payment's credited visits, ``credits``) are listed too, by table name.
    assert erased.stdout.startswith("erased 1 visitor ids: deleted "), erased.stdout
    assert f"2 events, {session_rows} sessions; unlinked 1 payments" in erased.stdout

    left = await shop.adapters.event_store.query(
        "SELECT DISTINCT visitor_id FROM events WHERE website_id = {s:UUID}", parameters={"s": shop.id}
    )
    assert left.result_rows == [(other,)]
    [payment] = await shop.payments()
    assert (payment["transaction_id"], payment["visitor_id"], payment["link"]) == ("tx-cli", "", "erased")
    records = (await shop.owner.get(f"/api/v1/sites/{shop.id}/privacy/requests")).json()
    assert sorted(r["kind"] for r in records) == ["erase", "export"]
    assert all(r["requested_by"].startswith("cli") for r in records)


@embedded
def test_the_command_line_names_what_is_wrong(env: dict[str, str]) -> None:
    both = _datafast(env, "export", "--site", str(uuid.uuid4()), "--visitor-id", "v", "--email", "a@b.c")
    assert both.returncode == 2
    assert "exactly one of visitor-id, user-id or email" in both.stderr
    none = _datafast(env, "erase", "--site", str(uuid.uuid4()))
    assert none.returncode == 2  # before asking to confirm
    assert "Erase this person" not in none.stderr
    missing = _datafast(env, "export", "--site", str(uuid.uuid4()), "--visitor-id", "v")
    assert missing.returncode == 1
    assert "no site with the id" in missing.stderr
