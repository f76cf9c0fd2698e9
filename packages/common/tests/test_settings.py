from __future__ import annotations

from pathlib import Path

import pytest

from market_common.identifiers import InvalidIdentifierError, is_valid_symbol, qualified
from market_common.settings import load_settings


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    s = load_settings()
    assert s.kafka.bootstrap_servers.startswith("127.0.0.1:")
    assert s.s3.endpoint_url == "http://127.0.0.1:9000"
    assert (s.snowflake.host, s.snowflake.port, s.snowflake.protocol) == ("127.0.0.1", 8085, "http")
    assert s.symbols[:3] == ["AAPL", "MSFT", "GOOGL"] and len(s.symbols) == 10
    assert s.stack.state_dir == tmp_path.resolve()


def test_clients_follow_a_private_stacks_ports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Regression: a second stack on other ports started there, but its clients reached the
    first stack's 9092/9000/8085, because only the services read MARKET_STACK__*_PORT."""
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_STACK__KAFKA_PORT", "19092")
    monkeypatch.setenv("MARKET_STACK__MINIO_PORT", "19000")
    monkeypatch.setenv("MARKET_STACK__FAKESNOW_PORT", "18085")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert s.s3.endpoint_url == "http://127.0.0.1:19000"
    assert (s.snowflake.host, s.snowflake.port) == ("127.0.0.1", 18085)

    # Endpoints that are set win over the stack's ports.
    monkeypatch.setenv("MARKET_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092")
    monkeypatch.setenv("MARKET_S3__ENDPOINT_URL", "https://s3.example.com")
    monkeypatch.setenv("MARKET_SNOWFLAKE__PORT", "443")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "broker-1:9092"
    assert s.s3.endpoint_url == "https://s3.example.com"
    assert s.snowflake.port == 443


def test_env_nested_values_and_symbol_lists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    monkeypatch.setenv("MARKET_SYMBOLS", "aapl, nvda")
    monkeypatch.setenv("MARKET_SNOWFLAKE__ACCOUNT", "xy12345.eu-west-1")
    monkeypatch.setenv("MARKET_SNOWFLAKE__PASSWORD", "from-env")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert s.symbols == ["AAPL", "NVDA"]
    # A real account gets no emulator host/port: the connector derives them.
    assert s.snowflake.host is None and s.snowflake.port is None
    assert (
        s.snowflake.password is not None and s.snowflake.password.get_secret_value() == "from-env"
    )


def test_stack_env_file_supplies_generated_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MARKET_S3__ACCESS_KEY_ID", raising=False)
    (tmp_path / "stack.env").write_text("MARKET_S3__ACCESS_KEY_ID=generated-id\n")
    s = load_settings()
    assert s.s3.access_key_id is not None
    assert s.s3.access_key_id.get_secret_value() == "generated-id"


@pytest.mark.parametrize("bad", ["DAILY METRICS", "x;drop table t", "1ABC", "", "a" * 300, 'T"'])
def test_table_settings_reject_unsafe_identifiers(
    bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKET_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_SNOWFLAKE__BATCH_TABLE", bad)
    with pytest.raises(ValueError, match="not a valid identifier"):
        load_settings()
    with pytest.raises(InvalidIdentifierError):
        qualified("DB", bad)


def test_symbol_pattern() -> None:
    assert all(is_valid_symbol(s) for s in ["AAPL", "V", "BRK.B", "BF-B", "GOOGL"])
    assert not any(is_valid_symbol(s) for s in ["aapl", "AAPL'--", "TOOLONGSYM", "", "A B"])
