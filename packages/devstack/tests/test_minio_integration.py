"""Objects through boto3 against the stack's MinIO (path-style, endpoint from settings)."""

from __future__ import annotations

from typing import Any

import pytest
from market_testing.pytest_plugin import UniqueNames

from market_devstack.stack import StackInfo

pytestmark = pytest.mark.integration


def test_put_get_object(s3_client: Any, unique_name: UniqueNames) -> None:
    bucket = unique_name("bkt")
    s3_client.create_bucket(Bucket=bucket)
    try:
        body = b"market data \x00\x01 payload" * 100
        s3_client.put_object(Bucket=bucket, Key="raw/2024/01/01/part-0.json", Body=body)
        got = s3_client.get_object(Bucket=bucket, Key="raw/2024/01/01/part-0.json")
        assert got["Body"].read() == body
    finally:
        for obj in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=obj["Key"])
        s3_client.delete_bucket(Bucket=bucket)


def test_lake_bucket_from_settings_exists(local_stack: StackInfo, s3_client: Any) -> None:
    s3 = local_stack.settings.s3
    assert s3.endpoint_url == local_stack.s3_endpoint_url
    assert s3.access_key_id is not None and s3.secret_access_key is not None
    s3_client.head_bucket(Bucket=s3.bucket)
