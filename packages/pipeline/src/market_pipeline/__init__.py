"""market_pipeline."""
