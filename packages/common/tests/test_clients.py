from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from market_common.clients import (
    SnowflakeUnavailableError,
    retry,
    s3_client,
    snowflake_connect_kwargs,
    snowflake_connection,
    use_gzip_level,
)
from market_common.settings import SnowflakeSettings, load_settings


def test_s3_client_uses_endpoint_and_path_style(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_S3__ENDPOINT_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("MARKET_S3__ACCESS_KEY_ID", "test-id")
    monkeypatch.setenv("MARKET_S3__SECRET_ACCESS_KEY", "test-secret")
    client = s3_client(load_settings())
    assert client.meta.endpoint_url == "http://127.0.0.1:9999"
    assert client.meta.config.s3["addressing_style"] == "path"
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    assert url.startswith("http://127.0.0.1:9999/b/k")


def test_key_pair_auth_is_used_instead_of_password(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "rsa_key.p8"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    sf = SnowflakeSettings(
        account="xy12345", user="LOADER", private_key_path=pem,
        private_key_passphrase=SecretStr("pass"), role="LOADER_ROLE", warehouse="LOAD_WH",
    )  # fmt: skip
    kw = snowflake_connect_kwargs(sf, database="DB", schema="PUBLIC")
    assert "password" not in kw and "host" not in kw
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert kw["private_key"] == der
    assert (kw["role"], kw["warehouse"], kw["database"]) == ("LOADER_ROLE", "LOAD_WH", "DB")


def test_unreachable_warehouse_retries_then_fails_clearly() -> None:
    sleeps: list[float] = []
    # Port 9 (discard) on loopback: nothing listens there, connections are refused at once.
    sf = SnowflakeSettings(port=9, connect_retries=3, login_timeout_s=3)
    with pytest.raises(SnowflakeUnavailableError, match=r"127\.0\.0\.1:9 after 3 attempts"):
        snowflake_connection(sf, sleep=sleeps.append)
    _assert_policy_delays(sleeps, 2)


def test_retry_backs_off_and_reraises() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("transient")
        return "ok"

    assert retry(flaky, attempts=5, sleep=sleeps.append) == "ok"
    _assert_policy_delays(sleeps, 2)

    def broken() -> None:
        raise ConnectionError("still down")

    with pytest.raises(ConnectionError, match="still down"):
        retry(broken, attempts=3, sleep=sleeps.append)


def _assert_policy_delays(sleeps: list[float], n: int, first: float = 0.5) -> None:
    """The retry policy's delays: ``first * 2**i`` plus a jitter of at most ``first``."""
    assert len(sleeps) == n, sleeps
    for i, delay in enumerate(sleeps):
        assert first * 2**i <= delay <= first * 2**i + first, (i, sleeps)


def test_gzip_level_reaches_kafka_pythons_batch_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka.record import default_records

    # Restored after the test: the level is process-wide.
    monkeypatch.setattr(default_records, "gzip_encode", default_records.gzip_encode)
    data = b'{"symbol":"AAPL","close":187.25}' * 500
    # Byte 8 of a gzip member (XFL) is 2 for level 9, 4 for level 1 and 0 in between.
    assert default_records.gzip_encode(data)[8] == 2, "kafka-python's own default is level 9"
    use_gzip_level(6)
    assert default_records.gzip_encode(data)[8] == 0, "level 6 after use_gzip_level(6)"
    use_gzip_level(1)
    assert default_records.gzip_encode(data)[8] == 4, "level 1 after use_gzip_level(1)"
    assert gzip.decompress(default_records.gzip_encode(data)) == data
