"""Ingestion: POST /track → validate → enrich → dedupe → durable spool → batched ClickHouse inserts."""
