"""Objects through boto3 against the stack's MinIO (path-style, endpoint from settings)."""

from __future__ import annotations

from typing import Any

import pytest

from market_devstack.stack import StackInfo
from market_testing.pytest_plugin import UniqueNames

pytestmark = pytest.mark.integration


def test_put_get_object(local_stack: StackInfo, s3_client: Any, unique_name: UniqueNames) -> None:
    # The clients' (pipeline) user may only use the lake bucket: a unique prefix in it.
    bucket = local_stack.settings.s3.bucket
    key = f"{unique_name('obj')}/raw/2024/01/01/part-0.json"
    try:
        body = b"market data \x00\x01 payload" * 100
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
        got = s3_client.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
    finally:
        s3_client.delete_object(Bucket=bucket, Key=key)


def test_lake_bucket_from_settings_exists(local_stack: StackInfo, s3_client: Any) -> None:
    s3 = local_stack.settings.s3
    assert s3.endpoint_url == local_stack.s3_endpoint_url
    assert s3.access_key_id is not None and s3.secret_access_key is not None
    s3_client.head_bucket(Bucket=s3.bucket)
