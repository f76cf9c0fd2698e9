"""Airflow 3 DAG factories for the market-data pipelines.

Thin DAG files call one factory with a config; see README.md for runners and deployment.
"""

from __future__ import annotations

from market_dags.config import (
    BatchPipelineConfig,
    ConfigError,
    DbtConfig,
    DbtPipelineConfig,
    DeploymentSettings,
    RunnerConfig,
    RunnerKind,
    StreamingPipelineConfig,
    TaskDefaults,
    TopicsConfig,
)

__all__ = [
    "BatchPipelineConfig",
    "ConfigError",
    "DbtConfig",
    "DbtPipelineConfig",
    "DeploymentSettings",
    "RunnerConfig",
    "RunnerKind",
    "StreamingPipelineConfig",
    "TaskDefaults",
    "TopicsConfig",
]
