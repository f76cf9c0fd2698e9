"""Spark batch and Structured Streaming jobs of the market data platform.

Jobs: :func:`market_spark.batch.run_batch` (``raw/historical`` → ``processed/historical``),
:func:`market_spark.stream.run_stream` (Kafka ticks → ``processed/realtime`` windows) and
:func:`market_spark.recompute.run_recompute` (the same windows from ``raw/realtime``).
"""
