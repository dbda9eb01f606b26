"""The event store: ClickHouse through clickhouse-connect, embedded (chDB) or a server over HTTP.

Both engines speak the same SQL. clickhouse-connect's clients are synchronous (its async
client refuses chDB), so every call runs in a thread pool to keep the event loop free.
Values are always bound server-side with ``{name:Type}`` placeholders.

Every read (:meth:`EventStore.query`) runs under ClickHouse's own limits, ``max_execution_time``
and ``max_memory_usage`` (``REPORT_MAX_SECONDS`` / ``REPORT_MAX_MEMORY``), so one expensive
report cannot hold a thread or the server's memory; a read that hits them raises
:class:`~datafast.errors.QueryTooExpensive` (a 503 problem), never a bare driver error.
Inserts and DDL are not limited.

Embedded, one process both ingests and answers the dashboard: what ingest does (inside
:meth:`EventStore.ingesting`) runs on threads of its own, so a batch's insert never queues behind
a dashboard's panels and the live feed's next events are not held up by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.query import QueryResult
from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from datafast.errors import QueryTooExpensive, ServiceUnavailable
from datafast.settings import Settings

__all__ = (
    "ChdbEventStore",
    "EventStore",
    "HttpEventStore",
    "QueryResult",
    "create_event_store",
    "read_limits",
)

T = TypeVar("T")

# ClickHouse error codes of a read stopped by its limits (TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED,
# TOO_SLOW: the estimated time is over max_execution_time).
_LIMIT_CODES = re.compile(r"\b(?:Code: ?|code=)(159|241|160)\b")
_INGESTING: ContextVar[bool] = ContextVar("datafast_ingesting", default=False)


def read_limits(max_seconds: float, max_memory: int) -> dict[str, Any]:
    """The ClickHouse settings every read runs with; 0 leaves a limit off."""
    limits: dict[str, Any] = {}
    if max_seconds > 0:
        limits["max_execution_time"] = max_seconds
        limits["timeout_overflow_mode"] = "throw"
    if max_memory > 0:
        limits["max_memory_usage"] = max_memory
    return limits


class EventStore:
    """ClickHouse access shared by both engines; subclasses decide how clients are made."""

    engine = "clickhouse"

    def __init__(
        self,
        database: str,
        cluster: str | None,
        threads: int,
        tracer_provider: TracerProvider | None,
        limits: Mapping[str, Any] | None = None,
        ingest_threads: int = 0,
    ) -> None:
        self.limits: dict[str, Any] = dict(limits or {})
        """ClickHouse settings of every :meth:`query` (see :func:`read_limits`)."""
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self.database = database
        self.cluster = cluster
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clickhouse")
        self._ingest_threads = ingest_threads
        self._ingest_executor = (
            ThreadPoolExecutor(max_workers=ingest_threads, thread_name_prefix="clickhouse-ingest")
            if ingest_threads
            else self._executor
        )
        self._closed = False
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._reads: dict[tuple[str, str], asyncio.Future[QueryResult]] = {}
        """Reads in flight for :meth:`query_shared`, by statement and values."""

    def _connect(self, database: str | None) -> Client:
        raise NotImplementedError

    def _client(self) -> Client:
        """One client per pool thread: clients keep per-connection state (database, settings)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._connect(self.database)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    async def open(self) -> None:
        """Connect every pool thread's client now, as a connection pool opens at start: the first
        reports after a start then do not pay for it (a chDB client takes 20 to 50 ms to connect, and a
        dashboard's panels at once need every thread)."""
        barrier = threading.Barrier(self._threads)

        def connect() -> None:
            try:
                self._client()
            except BaseException:
                barrier.abort()  # the others stop waiting for this thread
                raise
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)  # a thread that connected takes no second one of these

        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, connect) for _ in range(self._threads)))
        for _ in range(self._ingest_threads):
            await loop.run_in_executor(self._ingest_executor, self._client)

    @staticmethod
    @contextlib.contextmanager
    def ingesting() -> Iterator[None]:
        """Calls made inside (by this task and what it awaits) run on ingest's own threads, when the
        store has them (embedded): not behind the dashboard's reads."""
        token = _INGESTING.set(True)
        try:
            yield
        finally:
            _INGESTING.reset(token)

    async def _run(self, operation: str, statement: str, call: Any) -> Any:
        with self._tracer.start_as_current_span(
            f"clickhouse {operation}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "db.system": "clickhouse",
                "db.name": self.database,
                "db.statement": statement[:2000],
            },
        ):
            loop = asyncio.get_running_loop()
            executor = self._ingest_executor if _INGESTING.get() else self._executor
            try:
                return await loop.run_in_executor(executor, call)
            except RuntimeError:  # "cannot schedule new futures after shutdown"
                if not self._closed:
                    raise
                # A request that came in while the process stops: a 503, not an error of ours.
                raise ServiceUnavailable("DataFast is stopping: retry in a moment") from None

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, limited: bool = True
    ) -> QueryResult:
        """A read, under :attr:`limits` unless ``limited=False`` (start-up checks such as migrations,
        which must not fail because reports are configured tight)."""
        settings = self.limits if limited else {}

        def call() -> QueryResult:
            try:
                return self._client().query(sql, parameters=dict(parameters or {}), settings=settings)
            except DatabaseError as exc:
                if _LIMIT_CODES.search(str(exc)):
                    raise QueryTooExpensive(
                        "This report needs more time or memory than the server allows: "
                        "narrow the date range or the filters, or retry later"
                    ) from exc
                raise

        result: QueryResult = await self._run("query", sql, call)
        return result

    async def query_shared(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """:meth:`query`, run once for identical reads in flight at the same time: a dashboard's
        panels asking the same thing, several people opening the same report. Callers get the
        same result object: read it, never change it. Nothing is kept once the read is done."""
        key = (sql, repr(sorted((parameters or {}).items())))
        running = self._reads.get(key)
        if running is None:
            running = asyncio.ensure_future(self.query(sql, parameters))
            self._reads[key] = running
            running.add_done_callback(lambda done: self._read_done(key, done))
        # One caller cancelled (a closed connection) does not cancel the read for the others.
        return await asyncio.shield(running)

    def _read_done(self, key: tuple[str, str], done: asyncio.Future[QueryResult]) -> None:
        if self._reads.get(key) is done:
            del self._reads[key]
        if not done.cancelled():
            done.exception()  # retrieved here too: every caller may have gone away

    async def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        def call() -> Any:
            return self._client().command(
                sql, parameters=dict(parameters or {}), settings=dict(settings or {})
            )

        return await self._run("command", sql, call)

    async def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        """Insert rows; a repeated ``dedup_token`` makes a replayed batch write nothing."""
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else {}

        def call() -> None:
            self._client().insert(
                table, rows, column_names=list(column_names), database=self.database, settings=settings
            )

        await self._run("insert", f"INSERT INTO {table}", call)

    async def ensure_database(self) -> None:
        """Create the database (on every node of the cluster, when there is one)."""
        on_cluster = f" ON CLUSTER {self.cluster}" if self.cluster else ""
        sql = f"CREATE DATABASE IF NOT EXISTS {self.database}{on_cluster}"

        def call() -> None:
            client = self._connect(None)
            try:
                client.command(sql)
            finally:
                client.close()

        await self._run("command", sql, call)

    async def insert_raw(
        self, table: str, column_names: Sequence[str], block: bytes, fmt: str, dedup_token: str | None = None
    ) -> None:
        """Insert pre-encoded rows (e.g. JSONEachRow lines) without converting them in Python."""
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else {}

        def call() -> None:
            self._client().raw_insert(
                table, list(column_names), insert_block=block, fmt=fmt, settings=settings
            )

        await self._run("insert", f"INSERT INTO {table} FORMAT {fmt}", call)

    async def raw_query(self, sql: str, fmt: str = "Native") -> bytes:
        """A read's result as ClickHouse encodes it in ``fmt`` (backups: no conversion in Python)."""

        def call() -> bytes:
            data: bytes = self._client().raw_query(sql, fmt=fmt)
            return data

        return await self._run("query", sql, call)  # type: ignore[no-any-return]

    async def ping(self) -> None:
        """Raise when ClickHouse does not answer a trivial query."""
        await self.command("SELECT 1")

    async def close(self) -> None:
        self._closed = True
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._executor.shutdown(wait=True)
        self._ingest_executor.shutdown(wait=True)


class ChdbEventStore(EventStore):
    """The embedded engine: chDB inside this process, its data in ``DATA_DIR/clickhouse``."""

    engine = "chdb"

    def __init__(
        self,
        path: str,
        database: str,
        tracer_provider: TracerProvider | None = None,
        limits: Mapping[str, Any] | None = None,
    ) -> None:
        if importlib.util.find_spec("chdb") is None:
            raise RuntimeError(
                "embedded mode needs chDB, which this install lacks: install it with "
                "`pip install 'datafast[embedded]'` (the default image has it), or set CLICKHOUSE_URL "
                "to a ClickHouse server (scaled mode)"
            )
        # chDB runs queries on its own threads; a few Python threads keep it busy, and one more
        # is ingest's (this process's batches).
        super().__init__(
            database, None, threads=4, tracer_provider=tracer_provider, limits=limits, ingest_threads=1
        )
        self.path = path

    def _connect(self, database: str | None) -> Client:
        return clickhouse_connect.get_client(dsn=f"chdb://{self.path}", database=database)


class HttpEventStore(EventStore):
    """A ClickHouse server or cluster over HTTP(S)."""

    engine = "clickhouse-server"

    def __init__(
        self,
        url: str,
        database: str,
        cluster: str | None,
        tracer_provider: TracerProvider | None = None,
        limits: Mapping[str, Any] | None = None,
    ) -> None:
        # As many threads as clickhouse-connect keeps connections per server (its shared urllib3
        # pool holds 8): more would open and discard a connection per query.
        super().__init__(database, cluster=cluster, threads=8, tracer_provider=tracer_provider, limits=limits)
        self.url = url

    def _connect(self, database: str | None) -> Client:
        # No session id: concurrent queries on one session are refused by the server.
        return clickhouse_connect.get_client(
            dsn=self.url, database=database or "default", autogenerate_session_id=False
        )


def create_event_store(settings: Settings, tracer_provider: TracerProvider | None = None) -> EventStore:
    limits = read_limits(settings.report_max_seconds, settings.report_max_memory)
    if settings.embedded_clickhouse:
        path = settings.clickhouse_url.removeprefix("chdb://")
        return ChdbEventStore(path, settings.clickhouse_database, tracer_provider, limits)
    return HttpEventStore(
        settings.clickhouse_url,
        settings.clickhouse_database,
        settings.clickhouse_cluster,
        tracer_provider,
        limits,
    )
