"""The one schema definition renders to single-node and cluster DDL."""

from __future__ import annotations

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

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


def _format(client: Client, statement: str) -> str:
    """The statement as ClickHouse's parser reads it, printed back by its formatter."""
    text: str = client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
    return text


@pytest.mark.parametrize("target", [SINGLE, CLUSTER], ids=["single", "cluster"])
def test_every_migration_statement_parses_in_clickhouse(target: Target) -> None:
    """ClickHouse's own parser (in chDB) accepts every statement we would send: EXPLAIN AST parses
    it, and formatQuery's text parses again to the same text (a lossless round trip)."""
    statements = [s for m in load_clickhouse_migrations() for s in m.render(target)]
    statements += CreateTable(MIGRATIONS_TABLE).render(target)
    kinds = {
        "CREATE": "CreateQuery",
        "ALTER": "AlterQuery",
        "INSERT": "InsertQuery",
        "DROP": "DropQuery",
        "TRUNCATE": "TruncateQuery",
    }
    client = clickhouse_connect.get_client(dsn="chdb://:memory:")
    try:
        for statement in statements:
            ast = client.query(f"EXPLAIN AST {statement}").result_rows
            assert ast[0][0].startswith(kinds[statement.split()[0]]), (statement, ast[0])
            formatted = _format(client, statement)
            assert _format(client, formatted) == formatted, statement
            if target.cluster is None:
                assert " ON CLUSTER " not in formatted
                assert "Replicated" not in formatted
            elif not statement.startswith("INSERT"):
                # Every DDL statement goes to every node; parsing kept the clause.
                assert f" ON CLUSTER {target.cluster}" in formatted, statement
    finally:
        client.close()


def test_cluster_tables_are_replicated_locally_and_distributed_by_site() -> None:
    """Parsed by ClickHouse: each sharded table is a Replicated*MergeTree ``_local`` table on
    every node and a Distributed table over it, sharded by the site (so one site's rows, and its
    reports, stay on one shard); unsharded tables are replicated on every node."""
    statements = [s for m in load_clickhouse_migrations() for s in m.render(CLUSTER)]
    client = clickhouse_connect.get_client(dsn="chdb://:memory:")
    try:
        formatted = [_format(client, s) for s in statements if s.startswith("CREATE TABLE")]
    finally:
        client.close()
    tables = {f.split()[5]: f for f in formatted}  # CREATE TABLE IF NOT EXISTS <name> …
    sharded = {n.removesuffix("_local") for n in tables if n.endswith("_local")}
    assert {"datafast.events", "datafast.sessions", "datafast.payments"} <= sharded
    for name in sharded:
        assert "ENGINE = Replicated" in tables[f"{name}_local"], name
        local = name.split(".")[1] + "_local"
        assert f"ENGINE = Distributed(main, datafast, {local}, cityHash64(website_id))" in tables[name], name
    for name, ddl in tables.items():
        if name not in sharded and not name.endswith("_local"):
            assert "ENGINE = Replicated" in ddl, name
            assert "Distributed" not in ddl, name


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
