"""dbt_transformation_pipeline: freshness → staging → marts → tests → docs.

Runs daily at 06:00 UTC and when stock_market_batch_pipeline triggers it. Deployment
settings (dbt target, manifest path, runner) come from MARKET_DAGS__* environment
variables; see packages/dags/README.md.
"""

from __future__ import annotations

from airflow.sdk import DAG

from market_dags.config import DbtPipelineConfig
from market_dags.factories import build_dbt_pipeline_dag

# Airflow's safe-mode discovery only parses files that mention both `airflow` and `dag`.
dag: DAG = build_dbt_pipeline_dag(
    DbtPipelineConfig(
        schedule="0 6 * * *",  # 06:00 UTC daily, after the batch pipeline's usual finish
    )
)
