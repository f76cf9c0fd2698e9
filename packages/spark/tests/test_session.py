"""Session configuration derived from settings (no JVM started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from market_common.settings import S3Settings, SparkSettings, load_settings
from market_spark.session import (
    PACKAGE_SUBSTITUTIONS,
    S3A_TUNING,
    effective_packages,
    s3a_secrets,
    session_conf,
)


@pytest.mark.parametrize(
    "master", ["local[*]", "spark://spark-master:7077", "k8s://https://k8s:6443"]
)
def test_conf_comes_from_settings_for_any_master(master: str, tmp_path: Path) -> None:
    settings = load_settings(
        spark=SparkSettings(
            master=master, driver_memory="3g", shuffle_partitions=7, ivy_dir=tmp_path
        ),
        s3=S3Settings(
            endpoint_url="http://minio:9000",
            access_key_id=SecretStr("AK"),
            secret_access_key=SecretStr("SK"),
            path_style=True,
        ),
    )
    conf = session_conf(settings, app_name="job", ui_enabled=False)
    assert conf["spark.master"] == master
    assert conf["spark.app.name"] == "job"
    assert conf["spark.driver.memory"] == "3g"
    assert conf["spark.sql.shuffle.partitions"] == "7"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    # Secrets never travel as Spark conf (pyspark puts conf on the JVM's command line).
    assert not {k for k, v in conf.items() if v in ("AK", "SK") or k.endswith(".secret.key")}
    assert s3a_secrets(settings) == {"fs.s3a.access.key": "AK", "fs.s3a.secret.key": "SK"}
    assert conf["spark.ui.killEnabled"] == "false"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    # Every S3A tuning value is applied (each has its reason beside it in session.py).
    assert all(conf[f"spark.hadoop.{k}"] == v for k, v in S3A_TUNING.items())
    assert conf["spark.jars.ivy"] == str(tmp_path)
    settings_file = Path(conf["spark.jars.ivySettings"])
    assert settings_file.parent == tmp_path and "ibiblio" in settings_file.read_text()
    assert conf["spark.jars.packages"].split(",") == list(
        effective_packages(settings.spark.packages)
    )
    # Loopback binding only where the driver is local.
    assert ("spark.driver.host" in conf) == master.startswith("local")


def test_package_substitution_only_touches_listed_coordinates() -> None:
    untouched = "org.apache.hadoop:hadoop-aws:3.4.1"
    for wanted, used in PACKAGE_SUBSTITUTIONS.items():
        assert effective_packages((wanted, untouched)) == (used, untouched)
    assert effective_packages((untouched,)) == (untouched,)
