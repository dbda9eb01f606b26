"""DataFast deployed as users deploy it, for tests and benchmarks that talk to it over HTTP.

- ``embedded``: one ``datafast serve`` on its defaults (SQLite, chDB, in-process everything).
- ``scaled``: ``datafast migrate`` run once, then ``web`` ``datafast serve`` and ``workers``
  ``datafast worker`` processes sharing PostgreSQL, Valkey and one ClickHouse server over HTTP (in tests,
  ``tests/clickhouse_http.py``), each process with its own data directory, as in production.

    with Deployment(tmp_path, "scaled", postgres_url=…, valkey_url=…, clickhouse_url=…) as app:
        account = app.account()                  # on app.webs[0]; every web process knows it
        httpx.post(app.webs[1].url + "/track", …)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from saq.job import Status

from datafast.domain.ingest.jobs import DRAIN
from datafast.lib.queue import SaqQueue
from tests.live import Account, LiveServer

__all__ = ("Deployment",)

Mode = Literal["embedded", "scaled"]


class Deployment:
    def __init__(
        self,
        root: Path,
        mode: Mode,
        *,
        web: int = 2,
        workers: int = 2,
        postgres_url: str | None = None,
        valkey_url: str | None = None,
        clickhouse_url: str | None = None,
        **env: str,
    ) -> None:
        self.root, self.mode = root, mode
        self.env = dict(env)
        if mode == "scaled":
            if not (postgres_url and valkey_url and clickhouse_url):
                raise ValueError("scaled mode needs postgres_url, valkey_url and clickhouse_url")
            self.env = {
                "DATABASE_URL": postgres_url,
                "VALKEY_URL": valkey_url,
                "CLICKHOUSE_URL": clickhouse_url,
                "CLICKHOUSE_DATABASE": f"datafast_{uuid.uuid4().hex[:8]}",
                "SECRET_KEY": uuid.uuid4().hex * 2,  # shared: a session made by one web works on all
                "MIGRATE_ON_START": "false",
                **self.env,
            }
        self.web_count = web if mode == "scaled" else 1
        self.worker_count = workers if mode == "scaled" else 0
        self.webs: list[LiveServer] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    # -- lifecycle

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.mode == "scaled":
            done = self.cli("migrate")
            if done.returncode != 0:
                raise RuntimeError(f"datafast migrate failed:\n{done.stdout}{done.stderr}")
        for n in range(self.web_count):
            web = LiveServer(self.root / f"web-{n}", **self.env)
            self.webs.append(web)
            web.__enter__()
        for _ in range(self.worker_count):
            self.start_worker()
        if self.worker_count:
            self.wait_for_processing()

    def wait_for_processing(self, timeout: float = 60.0) -> None:
        """Until a worker holds every ingest partition (its SAQ drain job is active): what is
        tracked from now on is processed as it comes, not once a worker has finished starting."""
        partitions = int(self.env.get("INGEST_PARTITIONS", "1"))

        async def wait() -> None:
            queue = SaqQueue(self.env["VALKEY_URL"]).saq
            deadline = time.monotonic() + timeout
            try:
                while True:
                    jobs = [await queue.job(f"{DRAIN}:{partition}") for partition in range(partitions)]
                    if all(job is not None and job.status == Status.ACTIVE for job in jobs):
                        return
                    if time.monotonic() > deadline or any(w.poll() is not None for w in self.workers):
                        raise RuntimeError(
                            f"no worker took the ingest partitions within {timeout} s:\n{self.logs()}"
                        )
                    await asyncio.sleep(0.05)
            finally:
                await queue.disconnect()

        asyncio.run(wait())

    def start_worker(self) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        data = self.root / f"worker-{n}"
        data.mkdir(parents=True, exist_ok=True)
        log = (data / "worker.log").open("wb")
        self._logs.append(log)
        worker = subprocess.Popen(
            [sys.executable, "-m", "datafast", "worker"],
            env={**self._base_env(), "DATA_DIR": str(data), **self.env},
            cwd=data,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """kill -9, as the kernel's OOM killer or a lost node would."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
        for web in self.webs:
            web.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()

    # -- use

    @property
    def urls(self) -> list[str]:
        return [web.url for web in self.webs]

    def account(self) -> Account:
        return self.webs[0].account()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        data = self.root / "cli"
        data.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "datafast", *args],
            env={**self._base_env(), "DATA_DIR": str(data), **self.env},
            cwd=data,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def logs(self) -> str:
        parts = [f"--- {web.data_dir.name}\n{web.log()[-3000:]}" for web in self.webs]
        for n in range(len(self.workers)):
            path = self.root / f"worker-{n}" / "worker.log"
            if path.exists():
                parts.append(f"--- worker-{n}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    @staticmethod
    def _base_env() -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {**keep, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
