"""`datafast user reset-password` and `datafast apikey create`, run as an administrator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.accounts.conftest import PASSWORD, Client, login, signup


def datafast(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run(
        [sys.executable, "-m", "datafast", *args],
        env={**keep, **env, "LOG_FORMAT": "json"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_reset_password_sets_it_and_ends_sessions(
    client: Client, env: dict[str, str], tmp_path: Path
) -> None:
    user = await signup(client)

    result = datafast(
        "user", "reset-password", "--email", user.email, "--password", "brand new 9", env=env, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert (await user.get("/api/v1/auth/me")).status_code == 401
    await login(client, user.email, "brand new 9")
    weak = datafast(
        "user", "reset-password", "--email", user.email, "--password", "weak", env=env, cwd=tmp_path
    )
    assert weak.returncode != 0
    assert "8 characters" in weak.stderr
    unknown = datafast(
        "user", "reset-password", "--email", "no@example.com", "--password", PASSWORD, env=env, cwd=tmp_path
    )
    assert unknown.returncode != 0


async def test_apikey_create_prints_a_working_scoped_key(
    client: Client, env: dict[str, str], tmp_path: Path
) -> None:
    user = await signup(client)
    one, two = await user.create_site(), await user.create_site()

    result = datafast(
        "apikey", "create", "--user", user.email, "--site", one["id"], "--read-only", env=env, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("dfk_")
    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get(f"/api/v1/sites/{one['id']}", headers=bearer)).status_code == 200
    assert (await client.get(f"/api/v1/sites/{two['id']}", headers=bearer)).status_code == 404
    assert (
        await client.patch(f"/api/v1/sites/{one['id']}", json={"name": "x"}, headers=bearer)
    ).status_code == 403
    listed = (await user.get("/api/v1/api-keys")).json()
    assert [(k["prefix"], k["read_only"], k["sites"]) for k in listed] == [(key[:12], True, [one["id"]])]
    assert key not in str(listed)

    stranger = datafast("apikey", "create", "--user", "nobody@example.com", env=env, cwd=tmp_path)
    assert stranger.returncode != 0
