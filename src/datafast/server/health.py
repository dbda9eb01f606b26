"""Liveness and readiness probes for load balancers, Kubernetes and `make run` users."""

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

from datafast.db.migrate import config_db_is_current, pending_clickhouse_migrations
from datafast.lib.adapters import Adapters

__all__ = ("ComponentStatus", "HealthController", "Readiness")

CHECK_TIMEOUT = 3.0


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


async def _timed(engine: str, check: Callable[[], Awaitable[Any]]) -> ComponentStatus:
    started = time.perf_counter()
    task = asyncio.ensure_future(check())
    # A slow check is reported but not cancelled: cancelling a driver mid-connect leaks the connection.
    done, _ = await asyncio.wait({task}, timeout=CHECK_TIMEOUT)
    if not done:
        task.add_done_callback(_ignore_result)
        return ComponentStatus("error", engine, _ms(started), f"timed out after {CHECK_TIMEOUT:g}s")
    if (exc := task.exception()) is not None:
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return ComponentStatus("error", engine, _ms(started), message)
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
            503: ResponseSpec(Readiness, description="A component failed; it is named with its error")
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
                raise RuntimeError("migrations pending: run `datafast migrate`")

        async def clickhouse() -> None:
            await adapters.event_store.ping()
            if pending := await pending_clickhouse_migrations(adapters.event_store):
                raise RuntimeError(f"migrations pending ({pending}): run `datafast migrate`")

        checks: dict[str, Awaitable[ComponentStatus]] = {
            "database": _timed(db_engine.dialect.name, database),
            "clickhouse": _timed(adapters.event_store.engine, clickhouse),
        }
        if adapters.valkey is not None:
            checks["valkey"] = _timed("valkey", adapters.valkey.ping)
        results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
        ready = all(c.status == "ok" for c in results.values())
        return Response(
            Readiness("ok" if ready else "error", settings.mode, results),
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )
