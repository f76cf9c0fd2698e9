"""The pipeline's MinIO user: every client's identity, limited to the lake bucket (#16).

Finding: every client used MinIO's root credentials. A private MinIO (own state dir and
ports) is started the way ``market-devstack up`` starts it; root is kept for setup.
"""

from __future__ import annotations

from typing import Any

import pytest

from market_common.clients import s3_client
from market_common.settings import MarketSettings
from market_devstack.credentials import read_env_file
from market_devstack.minio import (
    ACCESS_KEY_VAR,
    ROOT_PASSWORD_VAR,
    ROOT_USER_VAR,
    SECRET_KEY_VAR,
    with_credentials,
)
from market_testing.pytest_plugin import PrivateStack

pytestmark = pytest.mark.integration


def denied(call: Any) -> str:
    """The S3 error code of a call that must be refused."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def assert_lake_only(client: Any, root: Any, bucket: str) -> None:
    """``client`` reads/writes/lists/deletes objects of ``bucket`` and nothing else."""
    client.put_object(Bucket=bucket, Key="t/part-0.parquet", Body=b"lake")
    assert client.get_object(Bucket=bucket, Key="t/part-0.parquet")["Body"].read() == b"lake"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="t/")["Contents"]] == [
        "t/part-0.parquet"
    ]
    # What S3A and the Delta log do besides: rename (copy + delete), bulk delete, multipart.
    client.copy_object(
        Bucket=bucket, Key="t/renamed", CopySource={"Bucket": bucket, "Key": "t/part-0.parquet"}
    )
    upload = client.create_multipart_upload(Bucket=bucket, Key="t/big")["UploadId"]
    assert [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [
        upload
    ]
    part = client.upload_part(Bucket=bucket, Key="t/big", UploadId=upload, PartNumber=1, Body=b"x")
    client.complete_multipart_upload(
        Bucket=bucket, Key="t/big", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )  # fmt: skip
    aborted = client.create_multipart_upload(Bucket=bucket, Key="t/aborted")["UploadId"]
    client.abort_multipart_upload(Bucket=bucket, Key="t/aborted", UploadId=aborted)
    keys = ["t/part-0.parquet", "t/renamed", "t/big"]
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert "Contents" not in client.list_objects_v2(Bucket=bucket, Prefix="t/")
    root.create_bucket(Bucket="other-team")
    root.put_object(Bucket="other-team", Key="secret.csv", Body=b"x")
    assert denied(lambda: client.create_bucket(Bucket="pipeline-made")) == "AccessDenied"
    assert (
        denied(lambda: client.get_object(Bucket="other-team", Key="secret.csv")) == "AccessDenied"
    )
    assert denied(lambda: client.list_objects_v2(Bucket="other-team")) == "AccessDenied"
    assert (
        denied(lambda: client.put_object(Bucket="other-team", Key="k", Body=b"")) == "AccessDenied"
    )
    assert denied(lambda: client.delete_bucket(Bucket=bucket)) == "AccessDenied"
    assert denied(lambda: client.get_bucket_policy(Bucket=bucket)) == "AccessDenied"


def test_clients_use_the_pipeline_user_which_reaches_the_lake_bucket_only(
    private_stack: PrivateStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = private_stack.up("minio")
    values = read_env_file(private_stack.state_dir / "stack.env")
    assert values[ROOT_USER_VAR] and values[ROOT_PASSWORD_VAR], "root kept for setup"
    assert values[ACCESS_KEY_VAR] != values[ROOT_USER_VAR]
    assert info.settings.s3.access_key_id is not None
    assert info.settings.s3.access_key_id.get_secret_value() == values[ACCESS_KEY_VAR]
    # What every client reads (MARKET_STATE_DIR → stack.env): the pipeline user.
    monkeypatch.chdir(private_stack.state_dir)
    loaded = MarketSettings(_env_file=[private_stack.state_dir / "stack.env"])  # type: ignore[call-arg]
    assert loaded.s3.access_key_id is not None
    assert loaded.s3.access_key_id.get_secret_value() == values[ACCESS_KEY_VAR]
    root = s3_client(with_credentials(private_stack.settings, root=True))
    assert_lake_only(s3_client(info.settings), root, info.settings.s3.bucket)


def test_an_older_stack_whose_clients_used_root_is_migrated_on_start(
    private_stack: PrivateStack,
) -> None:
    legacy_root = ("market-0123456789ab", "legacy-root-secret-0123456789")
    env = private_stack.state_dir / "stack.env"
    env.write_text(f"{ACCESS_KEY_VAR}={legacy_root[0]}\n{SECRET_KEY_VAR}={legacy_root[1]}\n")
    env.chmod(0o600)
    info = private_stack.up("minio")
    values = read_env_file(env)
    assert (values[ROOT_USER_VAR], values[ROOT_PASSWORD_VAR]) == legacy_root, "root kept"
    assert values[ACCESS_KEY_VAR] != legacy_root[0], "clients moved to the pipeline user"
    root = s3_client(with_credentials(private_stack.settings, root=True))
    assert_lake_only(s3_client(info.settings), root, info.settings.s3.bucket)
