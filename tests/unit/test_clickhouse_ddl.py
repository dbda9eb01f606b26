"""The one schema definition renders to single-node and cluster DDL."""

from __future__ import annotations

import clickhouse_connect
import pytest

from datafast.db.clickhouse import MIGRATIONS_TABLE, AddColumns, CreateTable, Target
from datafast.db.migrate import load_clickhouse_migrations

SINGLE = Target("datafast")
CLUSTER = Target("datafast", "main")


def _events_table():  # type: ignore[no-untyped-def]
    first = load_clickhouse_migrations()[0]
    (operation,) = first.operations
    assert isinstance(operation, CreateTable)
    return operation.table


def test_single_node_events_table() -> None:
    (ddl,) = CreateTable(_events_table()).render(SINGLE)

    assert ddl.startswith("CREATE TABLE IF NOT EXISTS datafast.events\n")
    assert "ON CLUSTER" not in ddl
    assert "ENGINE = MergeTree()" in ddl
    assert "PARTITION BY toYYYYMM(timestamp)" in ddl
    assert "ORDER BY (website_id, toDate(timestamp), visitor_id, timestamp)" in ddl
    assert "non_replicated_deduplication_window = 10000" in ddl
    assert "country LowCardinality(String)" in ddl


def test_cluster_events_table_is_replicated_and_distributed_by_website() -> None:
    local, distributed = CreateTable(_events_table()).render(CLUSTER)

    assert local.startswith("CREATE TABLE IF NOT EXISTS datafast.events_local ON CLUSTER main\n")
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events_local', '{replica}')"
        in local
    )
    assert "non_replicated_deduplication_window" not in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS datafast.events ON CLUSTER main AS datafast.events_local\n"
        "ENGINE = Distributed(main, datafast, events_local, cityHash64(website_id))"
    )


def test_unsharded_table_is_replicated_on_every_node() -> None:
    (ddl,) = CreateTable(MIGRATIONS_TABLE).render(CLUSTER)

    assert "datafast.datafast_migrations ON CLUSTER main" in ddl
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/datafast_migrations', '{replica}')"
        in ddl
    )
    assert "Distributed" not in ddl


def test_add_columns_alters_local_and_distributed_tables() -> None:
    statements = AddColumns(_events_table(), [("user_id", "String DEFAULT ''")]).render(CLUSTER)

    add = "ADD COLUMN IF NOT EXISTS user_id String DEFAULT ''"
    assert statements == [
        f"ALTER TABLE datafast.events_local ON CLUSTER main {add}",
        f"ALTER TABLE datafast.events ON CLUSTER main {add}",
    ]
    assert AddColumns(_events_table(), [("user_id", "String")]).render(SINGLE) == [
        "ALTER TABLE datafast.events ADD COLUMN IF NOT EXISTS user_id String"
    ]


def test_engine_with_arguments_keeps_them_after_the_replication_path() -> None:
    table = _events_table()
    from dataclasses import replace

    collapsing = replace(table, name="sessions", engine="VersionedCollapsingMergeTree(sign, version)")
    local, _ = CreateTable(collapsing).render(CLUSTER)

    assert (
        "ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/{shard}/{database}/sessions_local', "
        "'{replica}', sign, version)" in local
    )


@pytest.mark.parametrize("target", [SINGLE, CLUSTER], ids=["single", "cluster"])
def test_every_migration_statement_parses_in_clickhouse(target: Target) -> None:
    """ClickHouse's own parser (formatQuery, in chDB) accepts every statement we would send."""
    statements = [s for m in load_clickhouse_migrations() for s in m.render(target)]
    statements += CreateTable(MIGRATIONS_TABLE).render(target)
    client = clickhouse_connect.get_client(dsn="chdb://:memory:")
    try:
        for statement in statements:
            formatted = client.command("SELECT formatQuery({q:String})", parameters={"q": statement})
            assert str(formatted).startswith(
                ("CREATE TABLE", "ALTER TABLE", "CREATE MATERIALIZED VIEW", "TRUNCATE", "INSERT INTO", "DROP")
            )
    finally:
        client.close()


def test_cluster_rollups_are_filled_across_shards_and_kept_up_by_local_views() -> None:
    """The fill reads and writes every shard through the Distributed tables; views stay per node."""
    rollups = next(m for m in load_clickhouse_migrations() if m.name == "rollups_daily")
    statements = rollups.render(CLUSTER)
    inserts = [s for s in statements if s.startswith("INSERT INTO")]
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]

    assert [s.split()[2] for s in inserts] == [
        f"{CLUSTER.database}.{t}"
        for t in ("sessions_hourly", "sessions_daily", "events_hourly", "events_daily")
    ]
    assert all(s.endswith("SETTINGS insert_distributed_sync = 1") for s in inserts)
    assert f"FROM {CLUSTER.database}.sessions ARRAY JOIN" in inserts[0]
    assert all(" ON CLUSTER " in s and "_local AS SELECT" in s for s in views)
    assert f"FROM {CLUSTER.database}.sessions_local ARRAY JOIN" in views[0]
    assert f"FROM {CLUSTER.database}.sessions_hourly_local GROUP BY" in views[1]
