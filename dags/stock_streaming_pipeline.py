"""stock_streaming_pipeline: realtime ticks → Spark availableNow → Snowflake, every 30 min.

Deployment settings come from MARKET_DAGS__* environment variables; see
packages/dags/README.md.
"""

from __future__ import annotations

from airflow.sdk import DAG

from market_dags.config import StreamingPipelineConfig
from market_dags.factories import build_streaming_pipeline_dag

# Airflow's safe-mode discovery only parses files that mention both `airflow` and `dag`.
dag: DAG = build_streaming_pipeline_dag(
    StreamingPipelineConfig(
        schedule="*/30 * * * *",  # every 30 minutes, around the clock
    )
)
