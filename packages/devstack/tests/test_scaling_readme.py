"""The README's "Scaling out" settings are real: bash runs them, the settings loader reads them.

What production needs cannot run here (a remote cluster, SASL_SSL brokers, S3, Snowflake), so
this checks the part that can be wrong in the text: every exported variable is a setting of
:class:`~market_common.settings.MarketSettings`, its value arrives where the jobs read it, and
the standalone block sets every key the cluster tests set through ``cluster_spark_settings``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from market_common.settings import MarketSettings, SparkSettings
from market_devstack.spark_cluster import cluster_spark_settings

README = Path("README.md")


def scaling_blocks() -> list[str]:
    """The ```bash blocks of the README's "Scaling out" section that export MARKET_SPARK__MASTER."""
    text = README.read_text()
    section = text[text.index("## Scaling out") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [b for b in blocks if "MARKET_SPARK__MASTER=" in b]


def exported(block: str) -> dict[str, str]:
    """The MARKET_* variables ``block`` exports when bash runs it (nothing else inherited)."""
    script = f"{block}\nenv -0"
    out = subprocess.run(
        ["bash", "-euc", script], env={"HOME": "/home/u"}, capture_output=True, check=True
    ).stdout.decode()
    pairs = (item.split("=", 1) for item in out.split("\0") if item)
    return {k: v for k, v in pairs if k.startswith("MARKET_")}


def load(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> MarketSettings:
    """Settings from ``env`` alone, the way every console script loads them."""
    from market_common.settings import load_settings

    for key in [k for k in os.environ if k.startswith("MARKET_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_every_variable_of_the_standalone_block_is_a_setting_that_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standalone, _k8s = scaling_blocks()
    env = exported(standalone)
    settings = load(env, monkeypatch)
    sections = {"SPARK": settings.spark, "KAFKA": settings.kafka, "S3": settings.s3}
    sections["SNOWFLAKE"] = settings.snowflake
    for key, value in env.items():
        section, _, field = key.removeprefix("MARKET_").partition("__")
        model = sections[section]
        assert field.lower() in type(model).model_fields, f"{key} is not a setting"
        actual = getattr(model, field.lower())
        shown = actual.get_secret_value() if hasattr(actual, "get_secret_value") else actual
        if isinstance(shown, dict):
            assert shown == json.loads(value), key
        elif isinstance(shown, bool):
            assert shown == (value == "true"), key
        else:
            assert str(shown) == value, f"{key}={value!r} arrived as {shown!r}"
    assert settings.spark.master.startswith("spark://")
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    assert not settings.snowflake.is_local and settings.snowflake.host is None

    # The README names every Spark option the cluster tests set (values differ by size).
    tested = cluster_spark_settings(settings.model_copy(update={"spark": SparkSettings()}))
    assert set(tested.spark.extra_conf) <= set(settings.spark.extra_conf)


def test_the_kubernetes_block_gives_a_k8s_master_and_its_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _standalone, k8s = scaling_blocks()
    settings = load(exported(k8s), monkeypatch)
    assert settings.spark.master.startswith("k8s://https://")
    conf = settings.spark.extra_conf
    assert {"spark.kubernetes.container.image", "spark.driver.host"} <= set(conf)
