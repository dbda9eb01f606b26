"""Liveness and readiness probes for load balancers, Kubernetes and `make run` users.

``/readyz`` is public, so it names the component that failed with a generic reason
(``unavailable``, ``timed out``, ``migrations pending``) and never the driver's message, which
can carry host names, ports, user names or paths; the details go to the server log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from datafast import __version__
from datafast.db.migrate import config_db_is_current, pending_clickhouse_migrations
from datafast.lib.adapters import Adapters
from datafast.log import get_logger

__all__ = ("ComponentStatus", "HealthController", "Readiness")

CHECK_TIMEOUT = 3.0
UNAVAILABLE = "unavailable (details in the server log)"
MIGRATIONS_PENDING = "migrations pending: run `datafast migrate`"

log = get_logger(__name__)


class _NotReady(RuntimeError):
    """A reason of our own, safe to show as it is."""


class ComponentStatus(msgspec.Struct):
    status: str
    """ok or error"""
    engine: str
    latency_ms: float
    error: str | None = None


class Readiness(msgspec.Struct):
    status: str
    mode: str
    components: dict[str, ComponentStatus]
    version: str = __version__
    """The running DataFast release (as in ``pyproject.toml``)."""


async def _timed(name: str, engine: str, check: Callable[[], Awaitable[Any]]) -> ComponentStatus:
    started = time.perf_counter()
    task = asyncio.ensure_future(check())
    # A slow check is reported but not cancelled: cancelling a driver mid-connect leaks the connection.
    done, _ = await asyncio.wait({task}, timeout=CHECK_TIMEOUT)
    if not done:
        task.add_done_callback(_ignore_result)
        log.warning("readiness check timed out", component=name, engine=engine, timeout=CHECK_TIMEOUT)
        return ComponentStatus("error", engine, _ms(started), f"timed out after {CHECK_TIMEOUT:g}s")
    if (exc := task.exception()) is not None:
        if isinstance(exc, _NotReady):
            return ComponentStatus("error", engine, _ms(started), str(exc))
        log.warning("readiness check failed", component=name, engine=engine, error=repr(exc))
        return ComponentStatus("error", engine, _ms(started), UNAVAILABLE)
    return ComponentStatus("ok", engine, _ms(started))


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class HealthController(Controller):
    include_in_schema = True
    tags = ["health"]

    @get("/healthz", summary="Liveness: the process answers", cache=False)
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        summary="Readiness: every storage component answers and is migrated",
        cache=False,
        responses={
            503: ResponseSpec(Readiness, description="A component failed; it is named with a generic reason")
        },
    )
    async def readyz(
        self, adapters: NamedDependency[Adapters], db_engine: NamedDependency[AsyncEngine]
    ) -> Response[Readiness]:
        settings = adapters.settings

        async def database() -> None:
            async with db_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            if not await config_db_is_current(db_engine):
                raise _NotReady(MIGRATIONS_PENDING)

        async def clickhouse() -> None:
            try:
                await adapters.event_store.ping()
            except Exception as exc:
                if "UNKNOWN_DATABASE" in str(exc):  # ClickHouse answers; `datafast migrate` creates it
                    log.warning("readiness: ClickHouse database missing", error=repr(exc))
                    raise _NotReady(MIGRATIONS_PENDING) from None
                raise
            try:
                pending = await pending_clickhouse_migrations(adapters.event_store)
            except Exception as exc:  # ClickHouse answers, but the database or its ledger is missing
                log.warning("readiness: no ClickHouse migration ledger", error=repr(exc))
                raise _NotReady(MIGRATIONS_PENDING) from None
            if pending:
                raise _NotReady(MIGRATIONS_PENDING)

        checks: dict[str, Awaitable[ComponentStatus]] = {
            "database": _timed("database", db_engine.dialect.name, database),
            "clickhouse": _timed("clickhouse", adapters.event_store.engine, clickhouse),
        }
        if adapters.valkey is not None:
            checks["valkey"] = _timed("valkey", "valkey", adapters.valkey.ping)
        results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
        ready = all(c.status == "ok" for c in results.values())
        return Response(
            Readiness("ok" if ready else "error", settings.mode, results),
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )
