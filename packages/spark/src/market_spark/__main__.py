"""``python -m market_spark`` = ``market-spark``."""

from __future__ import annotations

import sys

from market_spark.cli import main

sys.exit(main())
