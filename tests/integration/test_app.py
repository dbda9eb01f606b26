"""The app on both storage modes: probes, problem details, OpenAPI, migrations."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import inspect

from datafast import __version__
from datafast.app import create_app
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_clickhouse, migrate_config_db
from datafast.lib.adapters import Adapters
from datafast.settings import Settings
from tests.conftest import SettingsFactory, free_port

Client = AsyncTestClient[Litestar]


async def test_healthz_answers(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_lists_each_component(client: Client, settings: Settings) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["mode"] == settings.mode
    assert body["version"] == __version__
    expected = {"database", "clickhouse"} | ({"valkey"} if settings.valkey_url else set())
    assert set(body["components"]) == expected
    assert all(c["status"] == "ok" for c in body["components"].values())
    assert body["components"]["database"]["engine"] == ("sqlite" if settings.uses_sqlite else "postgresql")
    engine = "chdb" if settings.embedded_clickhouse else "clickhouse-server"
    assert body["components"]["clickhouse"]["engine"] == engine


async def test_readyz_names_the_failing_component(make_settings: SettingsFactory) -> None:
    """Valkey down (a closed port) → 503 naming valkey; the other parts still report ok."""
    port = free_port()
    settings = make_settings(VALKEY_URL=f"redis://127.0.0.1:{port}/0", MIGRATE_ON_START="false")
    app = create_app(settings)
    # SAQ connects lazily, so the app starts even with Valkey down; readiness must say so.
    async with AsyncTestClient(app) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["components"]["valkey"]["status"] == "error"
    assert body["components"]["valkey"]["error"]
    # A generic reason only: the driver's message (host, port, errno) stays in the server log.
    assert body["components"]["valkey"]["error"].startswith("unavailable")
    assert "127.0.0.1" not in response.text
    assert str(port) not in response.text


async def test_readyz_reports_pending_migrations(make_settings: SettingsFactory) -> None:
    settings = make_settings(CLICKHOUSE_DATABASE="datafast_unmigrated", MIGRATE_ON_START="false")
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    clickhouse = response.json()["components"]["clickhouse"]
    assert clickhouse["status"] == "error"
    assert "datafast_unmigrated" in clickhouse["error"] or "migrat" in clickhouse["error"]


async def test_unknown_route_is_problem_details(client: Client) -> None:
    # Other paths are the dashboard's client-side routes (tests/integration/test_spa.py).
    response = await client.get("/api/no/such/route")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert response.json()["title"] == "Not Found"


async def test_wrong_method_is_problem_details(client: Client) -> None:
    response = await client.delete("/healthz")

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def test_openapi_schema_is_served(client: Client) -> None:
    response = await client.get("/api/schema/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "DataFast"
    assert {"/healthz", "/readyz"} <= set(schema["paths"])
    assert "503" in schema["paths"]["/readyz"]["get"]["responses"]


async def test_every_response_carries_a_request_id(client: Client) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")

    assert len(first.headers["x-request-id"]) == 16
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_migrations_are_idempotent_and_create_the_schema(client: Client, app: Litestar) -> None:
    """The app migrated on start; migrating again changes nothing."""
    adapters: Adapters = app.state.adapters
    settings = adapters.settings
    store = adapters.event_store

    assert await migrate_clickhouse(store) == []
    config = sqlalchemy_config(settings)
    engine = config.get_engine()
    try:
        before, after = await migrate_config_db(engine)
        assert before == after == "0019"
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert {"users", "websites", "memberships", "alembic_version"} <= tables
    finally:
        await engine.dispose()

    result = await store.query(
        "SELECT name, engine, partition_key, sorting_key FROM system.tables WHERE database = {db:String}",
        parameters={"db": store.database},
    )
    tables_ch = {row[0]: row[1:] for row in result.result_rows}
    assert tables_ch["events"] == (
        "MergeTree",
        "toYYYYMM(timestamp)",
        "website_id, toDate(timestamp), visitor_id, timestamp",
    )
    assert tables_ch["sessions"] == (
        "VersionedCollapsingMergeTree",
        "toYYYYMM(started_at)",
        "website_id, toDate(started_at), session_id, version",  # ClickHouse appends the version
    )
    assert "datafast_migrations" in tables_ch
    versions = await store.query(
        f"SELECT version, name FROM {store.database}.datafast_migrations FINAL ORDER BY version"
    )
    assert versions.result_rows == [
        (1, "events"),
        (2, "sessions"),
        (3, "rollups"),
        (4, "payments"),
        (5, "rollups_daily"),
        (6, "revenue_events"),
        (7, "credits"),
        (8, "subscriptions"),
        (9, "rollups_local_days"),
        (10, "scroll_depth"),
        (11, "imported"),
    ]
