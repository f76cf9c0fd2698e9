"""stock_market_batch_pipeline: daily ingest → Spark batch → Snowflake, then dbt.

Deployment settings (runner kind, images, symbols, source, retries, ...) come from
MARKET_DAGS__* environment variables; see packages/dags/README.md.
"""

from __future__ import annotations

from airflow.sdk import DAG

from market_dags.config import BatchPipelineConfig
from market_dags.factories import build_batch_pipeline_dag

# Airflow's safe-mode discovery only parses files that mention both `airflow` and `dag`.
dag: DAG = build_batch_pipeline_dag(
    BatchPipelineConfig(
        schedule="0 2 * * *",  # 02:00 UTC daily, after the US session has settled
    )
)
