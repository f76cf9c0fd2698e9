"""The platform's benchmarks; ``market-bench`` (``market_benchmarks.cli``) runs them."""
