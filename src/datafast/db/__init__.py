"""Storage schemas: the config database (SQLAlchemy models) and ClickHouse (event tables)."""
