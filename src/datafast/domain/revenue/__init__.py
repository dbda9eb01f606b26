"""Revenue: payment providers' webhooks, the Payments API, payments in ClickHouse, attribution."""
