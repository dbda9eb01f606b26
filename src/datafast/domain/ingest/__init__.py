"""Ingestion, in three rooms.

- ``capture``: what runs while the visitor's request is open (POST /track): validate, check the
  site and hostname, drop bots, derive the cookieless visitor id and the location, append to the
  log, answer 202.
- ``log``: where captured requests wait, durably: the embedded spool or the scaled Valkey stream,
  and the loops that take batches from them to processing and into ClickHouse.
- ``process``: what a batch becomes: de-duplicated, enriched events, sessions, ClickHouse rows.

``pipeline`` builds them for one process.
"""
