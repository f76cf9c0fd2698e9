"""The stack connects to fakesnow with the product's own connect kwargs, not a look-alike."""

from __future__ import annotations

from pathlib import Path

from market_common.clients import snowflake_connect_kwargs
from market_common.settings import MarketSettings, SnowflakeSettings
from market_devstack.snowflake import emulator_settings
from market_testing.pytest_plugin import private_stack_settings


def test_emulator_connections_use_the_product_session(tmp_path: Path) -> None:
    settings = private_stack_settings(tmp_path)
    kwargs = snowflake_connect_kwargs(emulator_settings(settings))

    assert kwargs["session_parameters"]["TIMEZONE"] == "UTC", "tests see the product's session"
    assert (kwargs["host"], kwargs["port"], kwargs["protocol"]) == (
        "127.0.0.1",
        settings.stack.fakesnow_port,
        "http",
    )
    assert kwargs["account"] == "local"


def test_emulator_settings_ignore_a_real_account(tmp_path: Path) -> None:
    """With a real account configured, the stack's probe still talks to its own fakesnow."""
    base = private_stack_settings(tmp_path)
    settings = MarketSettings(
        stack=base.stack,
        snowflake=SnowflakeSettings(account="xy12345", user="LOADER", role="LOADER_ROLE"),
    )
    emulator = emulator_settings(settings)
    assert emulator.is_local
    assert emulator.port == base.stack.fakesnow_port
    assert emulator.user == "LOADER"
    assert "role" not in snowflake_connect_kwargs(emulator)
