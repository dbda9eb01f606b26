"""The `datafast` command, run as a user runs it: real processes, real ports, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from datafast.lib.queue import SaqQueue
from tests.conftest import free_port
from tests.helpers import metric

DATAFAST = [sys.executable, "-m", "datafast"]


def _env(**extra: str) -> dict[str, str]:
    # Only what the command needs: nothing of the developer's own settings leaks in.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**keep, "LOG_FORMAT": "json", **extra}


def run(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DATAFAST, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


class Server:
    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [*DATAFAST, "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: granian's workers are its children
        )

    def crash(self) -> None:
        """kill -9 every process of the server at once, as a power cut or OOM kill would."""
        os.killpg(self.process.pid, signal.SIGKILL)

    def wait_ready(self, timeout: float = 90) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                response = httpx.get(self.url + "/readyz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if response.status_code == 200:
                return response
            time.sleep(0.2)
        raise AssertionError(f"not ready after {timeout}s:\n{self.output()}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
        out, _ = self.process.communicate(timeout=30)
        return out

    def kill(self) -> None:
        if self.process.poll() is None:
            self.crash()
            self.process.wait(timeout=30)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.kill()


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run("--help", env=_env(), cwd=tmp_path)

    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "user", "site"):
        assert f"  {command} " in result.stdout
    for sub in (["serve"], ["worker"], ["migrate"], ["user", "create"], ["site", "create"]):
        assert run(*sub, "--help", env=_env(), cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "http"), ("DATABASE_URL", "mysql://x/y"), ("CLICKHOUSE_URL", "ftp://ch")],
)
def test_bad_setting_stops_with_one_line_naming_it(tmp_path: Path, name: str, value: str) -> None:
    result = run("migrate", env=_env(DATA_DIR=str(tmp_path), **{name: value}), cwd=tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"datafast: configuration error: {name}=")


def test_embedded_serve_refuses_more_workers(tmp_path: Path) -> None:
    result = run("serve", "--workers", "2", env=_env(DATA_DIR=str(tmp_path)), cwd=tmp_path)

    assert result.returncode == 2
    assert "chDB" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_defaults_then_ctrl_c_then_serve_again_keeps_data(
    tmp_path: Path, server_factory: list[Server]
) -> None:
    """What `make run` does: embedded defaults, data under ./data, clean stop, data kept."""
    env = _env()  # no DATA_DIR: the default ./data under the working directory
    created = run(
        "user", "create", "--email", "founder@example.com", "--password", "hunter2024", env=env, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr

    first = Server(env, tmp_path, free_port())
    server_factory.append(first)
    ready = first.wait_ready().json()
    assert ready["mode"] == "embedded"
    assert set(ready["components"]) == {"database", "clickhouse"}
    assert first.stop() == 0
    first_log = first.output()
    assert '"clickhouse migrated"' in first_log
    assert (tmp_path / "data" / "datafast.db").is_file()
    assert (tmp_path / "data" / "clickhouse").is_dir()

    second = Server(env, tmp_path, free_port())
    server_factory.append(second)
    second.wait_ready()
    # The user made before the restart is still there: a site can be given to them while it serves.
    site = run(
        "site", "create", "--domain", "example.com", "--owner", "founder@example.com", env=env, cwd=tmp_path
    )
    assert site.returncode == 0, site.stderr
    assert second.stop() == 0
    # The ClickHouse schema was kept too: nothing to migrate the second time.
    assert '"clickhouse migrated"' not in second.output()


def test_user_and_site_create(tmp_path: Path) -> None:
    env = _env(DATA_DIR=str(tmp_path / "data"))
    user = run(
        "user", "create", "--email", "Owner@Example.com", "--password", "s3cretpass", env=env, cwd=tmp_path
    )
    assert user.returncode == 0, user.stderr
    assert "created user owner@example.com" in user.stdout

    duplicate = run(
        "user", "create", "--email", "owner@example.com", "--password", "s3cretpass", env=env, cwd=tmp_path
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    weak = run("user", "create", "--email", "x@example.com", "--password", "short", env=env, cwd=tmp_path)
    assert weak.returncode == 1
    assert "8 characters" in weak.stderr

    site = run(
        "site",
        "create",
        "--domain",
        "https://www.Example.com/pricing",
        "--owner",
        "owner@example.com",
        "--timezone",
        "Europe/Paris",
        "--currency",
        "eur",
        env=env,
        cwd=tmp_path,
    )
    assert site.returncode == 0, site.stderr
    assert "created site www.example.com" in site.stdout
    assert 'data-website-id="' in site.stdout

    bad_tz = run(
        "site",
        "create",
        "--domain",
        "other.com",
        "--owner",
        "owner@example.com",
        "--timezone",
        "Mars/Olympus",
        env=env,
        cwd=tmp_path,
    )
    assert bad_tz.returncode == 1
    assert "IANA timezone" in bad_tz.stderr

    nobody = run(
        "site", "create", "--domain", "third.com", "--owner", "nobody@example.com", env=env, cwd=tmp_path
    )
    assert nobody.returncode == 1
    assert "datafast user create" in nobody.stderr


@pytest.mark.scaled
def test_worker_runs_jobs_from_valkey(tmp_path: Path, postgres_url: str, valkey_url: str) -> None:
    metrics_port = free_port()
    env = _env(
        DATA_DIR=str(tmp_path),
        DATABASE_URL=postgres_url,
        VALKEY_URL=valkey_url,
        WORKER_METRICS_PORT=str(metrics_port),
    )
    worker = subprocess.Popen(
        [*DATAFAST, "worker", "--concurrency", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        async def ask() -> object:
            queue = SaqQueue(valkey_url)
            await queue.connect()
            try:
                return await queue.apply("ping", timeout=60)
            finally:
                await queue.close()

        result = asyncio.run(ask())
        assert result == {"pong": True, "pid": worker.pid}
        # Its own metrics, on its own port (a worker serves no app): the job's outcome is counted.
        deadline = time.monotonic() + 10
        while (
            metric(
                page := httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text,
                "datafast_jobs_total",
                job="ping",
                outcome="complete",
            )
            != 1
        ):
            assert time.monotonic() < deadline, page
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        out, _ = worker.communicate(timeout=30)
    assert "worker started" in out


def test_worker_without_valkey_explains(tmp_path: Path) -> None:
    result = run("worker", env=_env(DATA_DIR=str(tmp_path)), cwd=tmp_path)

    assert result.returncode == 2
    assert "VALKEY_URL" in result.stderr


def test_worker_check_answers_whether_the_queue_is_reachable(tmp_path: Path, valkey_url: str) -> None:
    """The Helm chart's worker liveness probe: `datafast worker --check`."""
    up = run("worker", "--check", env=_env(DATA_DIR=str(tmp_path), VALKEY_URL=valkey_url), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "the queue answers" in up.stdout
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = run(
        "worker",
        "--check",
        env=_env(DATA_DIR=str(tmp_path), VALKEY_URL=f"redis://127.0.0.1:{port}/0"),
        cwd=tmp_path,
    )
    assert down.returncode == 1
    assert "does not answer" in down.stderr
    assert "worker started" not in down.stdout + down.stderr


def test_backup_and_restore_commands_round_trip_and_refuse_a_busy_target(tmp_path: Path) -> None:
    source = _env(DATA_DIR=str(tmp_path / "a"), CLICKHOUSE_URL=f"chdb://{tmp_path / 'a' / 'ch'}")
    assert run("migrate", env=source, cwd=tmp_path).returncode == 0
    made = run(
        "user", "create", "--email", "b@example.com", "--password", "password1", env=source, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr

    backed_up = run("backup", str(tmp_path / "bk"), env=source, cwd=tmp_path)
    assert backed_up.returncode == 0, backed_up.stderr
    assert "clickhouse events" in backed_up.stdout
    assert "backup written" in backed_up.stdout

    target = _env(DATA_DIR=str(tmp_path / "b"), CLICKHOUSE_URL=f"chdb://{tmp_path / 'b' / 'ch'}")
    restored = run("restore", str(tmp_path / "bk"), env=target, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "config database: 1 rows" in restored.stdout  # the one user (no other table has rows)
    again = run("restore", str(tmp_path / "bk"), env=target, cwd=tmp_path)
    assert again.returncode == 1
    assert "already holds data" in again.stderr
    assert "--force" in again.stderr
    forced = run("restore", "--force", str(tmp_path / "bk"), env=target, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_embedded_backup_says_to_stop_the_server_that_holds_chdb(tmp_path: Path) -> None:
    env = _env(DATA_DIR=str(tmp_path / "a"), CLICKHOUSE_URL=f"chdb://{tmp_path / 'a' / 'ch'}")
    port = free_port()
    server = Server(env, tmp_path, port)
    try:
        server.wait_ready()
        busy = run("backup", str(tmp_path / "bk"), env=env, cwd=tmp_path)
    finally:
        server.kill()
    assert busy.returncode == 1
    assert "open in another process" in busy.stderr
