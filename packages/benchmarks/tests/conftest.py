"""The dev-stack fixtures for the benchmark tests (they run benchmarks on the local stack)."""

pytest_plugins = ["market_testing.pytest_plugin"]
