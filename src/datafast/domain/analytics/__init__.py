"""Analytics: the query layer over ClickHouse, funnels, visitor profiles and the Stats API rules."""
