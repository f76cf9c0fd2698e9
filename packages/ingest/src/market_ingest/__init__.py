"""market_ingest."""
