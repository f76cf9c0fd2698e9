"""``python -m market_benchmarks <command>``: how the suite starts each benchmark in a child."""

from market_benchmarks.cli import main

main()
