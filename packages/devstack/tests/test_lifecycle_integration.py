"""`up` twice leaves one process per service; `down` leaves none.

Runs on its own state_dir and free ports so it never touches the shared stack. Only MinIO
and fakesnow are cycled (seconds each); Kafka's lifecycle uses the same `Service` code path
and is exercised by every `up` of the shared stack.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from market_devstack import stack
from market_devstack.process import port_open
from market_testing.pytest_plugin import private_stack_settings

pytestmark = pytest.mark.integration


def test_up_twice_one_process_down_none(tmp_path: Path) -> None:
    settings = private_stack_settings(tmp_path)
    services = ["minio", "snowflake"]
    try:
        first = stack.ensure_up(settings, only=services)
        second = stack.ensure_up(settings, only=services)
        for name in services:
            assert first.services[name].healthy and not first.services[name].reused
            assert second.services[name].reused
            assert second.services[name].pid == first.services[name].pid
        assert (tmp_path / "logs" / "minio.log").is_file()
        assert sorted(p.name for p in (tmp_path / "pids").glob("*.pid")) == [
            "minio.pid",
            "snowflake.pid",
        ]
        # The generated credentials work against this MinIO; the settings' bucket exists.
        second.s3_client().head_bucket(Bucket=settings.s3.bucket)
    finally:
        stopped = stack.down(settings, only=services)
    assert stopped == {"snowflake": True, "minio": True}
    assert not list((tmp_path / "pids").glob("*.pid"))
    st = settings.stack
    assert not port_open(st.host, st.minio_port) and not port_open(st.host, st.fakesnow_port)
    assert stack.status(settings, only=services).services["minio"].running is False
    assert stack.down(settings, only=services) == {"snowflake": False, "minio": False}
