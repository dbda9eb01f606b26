"""A DataFast started as a user starts it (``datafast serve`` in its own process, its own data dir
and port), and an account on it: for tests and benchmarks that talk to it over real HTTP.

    with LiveServer(data_dir) as server:
        account = server.account()          # a user, a site, a read-write API key
        httpx.get(server.url + "/api/v1/sites/…/metrics", headers=account.bearer)

Its log goes to ``data_dir/server.log`` (never a pipe: a chatty server must not block on it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

__all__ = ("Account", "LiveServer", "free_port")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    site_id: str
    domain: str
    api_key: str
    session: str
    csrf: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class LiveServer:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        self.env = {
            **keep,
            "DATA_DIR": str(data_dir),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "BASE_URL": self.url,
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> LiveServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = (self.data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "datafast", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.data_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: granian's workers are its children
        )
        self.wait_ready()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, timeout: float = 120) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"datafast serve exited early:\n{self.log()[-4000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"datafast serve not ready after {timeout}s:\n{self.log()[-4000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def account(self, domain: str | None = None) -> Account:
        """Sign up a user, create their site and a read-write API key for it, over HTTP."""
        email = f"u{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse 1"
        domain = domain or f"s{uuid.uuid4().hex[:8]}.example.com"
        with httpx.Client(base_url=self.url, timeout=30) as client:
            signed = client.post("/api/v1/auth/signup", json={"email": email, "password": password})
            signed.raise_for_status()
            session = signed.cookies["datafast_session"]
            csrf = signed.json()["csrf_token"]
            client.cookies.clear()
            headers = {"Cookie": f"datafast_session={session}", "X-CSRF-Token": csrf}
            site = client.post("/api/v1/sites", json={"domain": domain}, headers=headers)
            site.raise_for_status()
            # API keys need a confirmed address: confirm it as an operator would.
            subprocess.run(
                [sys.executable, "-m", "datafast", "user", "verify", "--email", email],
                env=self.env,
                cwd=self.data_dir,
                check=True,
                capture_output=True,
            )
            key = client.post("/api/v1/api-keys", json={"name": "fuzz"}, headers=headers)
            key.raise_for_status()
        return Account(email, password, site.json()["id"], domain, key.json()["key"], session, csrf)
