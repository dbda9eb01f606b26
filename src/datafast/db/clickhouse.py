"""ClickHouse schema as data, rendered to single-node or cluster DDL from one definition.

A migration in ``migrations/clickhouse/`` lists operations built from these types. On a
single node a table is a plain ``*MergeTree``. With ``CLICKHOUSE_CLUSTER`` set, the same
table becomes ``<name>_local`` (``Replicated*MergeTree`` on every node, created ``ON
CLUSTER``) plus ``<name>``, a ``Distributed`` table sharded by its sharding key, so every
query and insert names ``<name>`` in both modes. Every statement is idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ("AddColumns", "CreateTable", "Operation", "RawSQL", "Table", "Target")


@dataclass(frozen=True, slots=True)
class Target:
    """Where DDL goes: a database, and the cluster when there is one."""

    database: str
    cluster: str | None = None

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: Sequence[tuple[str, str]]
    """(name, type with DEFAULT/CODEC clauses) in order."""
    order_by: str
    engine: str = "MergeTree()"
    partition_by: str | None = None
    primary_key: str | None = None
    ttl: str | None = None
    settings: Mapping[str, str | int] = field(default_factory=dict)
    single_node_settings: Mapping[str, str | int] = field(default_factory=dict)
    """Settings only a non-replicated table takes (e.g. non_replicated_deduplication_window)."""
    sharding_key: str | None = "rand()"
    """Expression for the Distributed table; None keeps a full replica of the table on every node."""

    def storage_name(self, target: Target) -> str:
        return f"{self.name}_local" if target.cluster and self.sharding_key else self.name


class Operation(Protocol):
    def render(self, target: Target) -> list[str]: ...


_ENGINE = re.compile(r"^(\w*MergeTree)\((.*)\)$", re.S)


def _replicated_engine(engine: str, target: Target, storage_name: str, sharded: bool) -> str:
    match = _ENGINE.match(engine.strip())
    if match is None:
        raise ValueError(f"cannot replicate engine {engine!r}")
    name, args = match.groups()
    # Sharded tables replicate within a shard; unsharded ones on every node of the cluster.
    shard = "{shard}/" if sharded else ""
    path = f"'/clickhouse/tables/{shard}{{database}}/{storage_name}', '{{replica}}'"
    return f"Replicated{name}({path}{', ' + args if args.strip() else ''})"


@dataclass(frozen=True, slots=True)
class CreateTable:
    table: Table

    def render(self, target: Target) -> list[str]:
        table = self.table
        storage = table.storage_name(target)
        sharded = bool(target.cluster and table.sharding_key)
        if target.cluster:
            engine = _replicated_engine(table.engine, target, storage, sharded)
            settings = dict(table.settings)
        else:
            engine = table.engine
            settings = {**table.settings, **table.single_node_settings}
        columns = ",\n    ".join(f"{name} {definition}" for name, definition in table.columns)
        parts = [
            f"CREATE TABLE IF NOT EXISTS {target.database}.{storage}{target.on_cluster}\n(\n    {columns}\n)",
            f"ENGINE = {engine}",
        ]
        if table.partition_by:
            parts.append(f"PARTITION BY {table.partition_by}")
        if table.primary_key:
            parts.append(f"PRIMARY KEY {table.primary_key}")
        parts.append(f"ORDER BY {table.order_by}")
        if table.ttl:
            parts.append(f"TTL {table.ttl}")
        if settings:
            parts.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
        statements = ["\n".join(parts)]
        if sharded:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {target.database}.{table.name}{target.on_cluster}"
                f" AS {target.database}.{storage}\n"
                f"ENGINE = Distributed({target.cluster}, {target.database}, {storage}, {table.sharding_key})"
            )
        return statements


@dataclass(frozen=True, slots=True)
class AddColumns:
    """Add columns to a table (and to its Distributed table on a cluster)."""

    table: Table
    columns: Sequence[tuple[str, str]]

    def render(self, target: Target) -> list[str]:
        names = [self.table.storage_name(target)]
        if names[0] != self.table.name:
            names.append(self.table.name)
        adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {name} {definition}" for name, definition in self.columns)
        return [f"ALTER TABLE {target.database}.{name}{target.on_cluster} {adds}" for name in names]


@dataclass(frozen=True, slots=True)
class RawSQL:
    """An escape hatch: statements written out for each mode, ``{db}`` and ``{on_cluster}`` filled in."""

    single_node: Sequence[str]
    cluster: Sequence[str]

    def render(self, target: Target) -> list[str]:
        statements = self.cluster if target.cluster else self.single_node
        return [
            s.format(db=target.database, on_cluster=target.on_cluster, cluster=target.cluster)
            for s in statements
        ]


MIGRATIONS_TABLE = Table(
    name="datafast_migrations",
    columns=[
        ("version", "UInt32"),
        ("name", "String"),
        ("applied_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ],
    engine="ReplacingMergeTree()",
    order_by="version",
    sharding_key=None,
)
