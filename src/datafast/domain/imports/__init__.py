"""Imports: a site's history brought from Plausible, Umami or Google Analytics 4.

Each tool's export is read into the same daily aggregates (:mod:`.parsers`), stored in
ClickHouse's ``imported_daily`` (``migrations/clickhouse/0011_imported.py``) by a queued job
(:mod:`.jobs`) whose state and summary live in the config database (``imports``). The Stats API
merges them with native data for the days before the site's first native event
(:mod:`datafast.domain.analytics.imported`).
"""
