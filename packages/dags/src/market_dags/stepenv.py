"""The environment of a step's subprocess under Airflow.

A step's child must see the same code as the worker (``PYTHONPATH`` from ``sys.path``,
:func:`market_common.runtime.child_env`), but not the folders Airflow itself puts on
``sys.path``: the DAG bundle (``dags/``) and ``plugins/``. dbt imports every top-level
module whose name starts with ``dbt_`` as a dbt plugin, so with ``dags/`` on the path
``dbt source freshness`` imported ``dags/dbt_transformation_pipeline.py``; that imports
Airflow, which in a task process finds the metadata DB blocked
(``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow-db-not-allowed:///``, set by the task SDK's
supervisor so task code cannot reach the DB) and exits with ``sqlalchemy.exc.ArgumentError``.
``dag.test()`` never showed it: there ``dags/`` is not on ``sys.path`` and the DB is not
blocked. The block itself is kept: steps have no business in Airflow's database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from market_common.runtime import child_env


def airflow_code_folders() -> set[Path]:
    """Folders Airflow adds to ``sys.path``: the configured DAGs and plugins folders."""
    try:
        from airflow.configuration import conf
    except ImportError:  # not under Airflow: nothing to exclude
        return set()
    folders = set()
    for key in ("dags_folder", "plugins_folder"):
        value = conf.get("core", key, fallback=None)
        if value:
            folders.add(Path(value).expanduser().resolve())
    return folders


def step_subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``child_env(extra)`` with Airflow's DAG and plugin folders removed from ``PYTHONPATH``."""
    env = child_env(extra)
    excluded = airflow_code_folders()
    kept = [
        entry
        for entry in env.get("PYTHONPATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() not in excluded
    ]
    env["PYTHONPATH"] = os.pathsep.join(kept)
    return env
