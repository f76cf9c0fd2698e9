"""MinIO's admin API (users, canned policies) over signed HTTP, for the stack's setup.

The stack gives the pipeline its own MinIO user, limited by a policy to the lake bucket;
only this setup uses the root account (what ``mc admin user add`` / ``policy create`` /
``policy attach`` do, without building the ``mc`` client). Requests are signed with
SigV4 like S3 calls (botocore's signer); a new user's secret travels in the body
encrypted with the root secret, in madmin's format (Argon2id key, AES-256-GCM in sio's
framing), which MinIO requires for that call.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ADMIN_PREFIX = "/minio/admin/v3"
# madmin-go encrypt.go / sio-go: 32-byte salt, AEAD id 0x00 (Argon2id + AES-GCM), 8-byte
# nonce prefix, then 16 KiB fragments each sealed with nonce||le32(seq), seq from 1.
_SALT_LEN = 32
_NONCE_LEN = 8
_FRAGMENT = 1 << 14


class MinioAdminError(RuntimeError):
    """MinIO refused an admin call; the message carries its status and error body."""


def encrypt_for_admin(secret_key: str, payload: bytes) -> bytes:
    """``madmin.EncryptData(secret_key, payload)``: what MinIO decrypts admin bodies with."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    salt = os.urandom(_SALT_LEN)
    nonce = os.urandom(_NONCE_LEN)
    key = Argon2id(salt=salt, length=32, iterations=1, lanes=4, memory_cost=64 * 1024).derive(
        secret_key.encode()
    )
    aead = AESGCM(key)
    # sio: the associated data is 0x00 || tag of the empty message under nonce||0; the last
    # fragment flips its first byte to 0x80.
    header = aead.encrypt(nonce + b"\0\0\0\0", b"", None)
    out = bytearray(salt + b"\x00" + nonce)
    fragments = [payload[i : i + _FRAGMENT] for i in range(0, len(payload), _FRAGMENT)] or [b""]
    for seq, fragment in enumerate(fragments, start=1):
        flag = b"\x80" if seq == len(fragments) else b"\x00"
        out += aead.encrypt(nonce + seq.to_bytes(4, "little"), fragment, flag + header)
    return bytes(out)


class MinioAdmin:
    """The few admin calls the stack needs, authenticated as the root user."""

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str, region: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    def _call(self, method: str, path: str, query: dict[str, str], body: bytes = b"") -> bytes:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = f"{self.endpoint_url}{ADMIN_PREFIX}/{path}?{urllib.parse.urlencode(query)}"
        request = AWSRequest(method=method, url=url, data=body)
        S3SigV4Auth(Credentials(self.access_key, self.secret_key), "s3", self.region).add_auth(
            request
        )
        prepared = urllib.request.Request(  # noqa: S310 - the stack's own http endpoint
            url, data=body or None, method=method, headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise MinioAdminError(
                f"MinIO admin {path} failed: HTTP {exc.code} {exc.read()[:500]!r}"
            ) from exc

    def add_policy(self, name: str, policy: dict[str, Any]) -> None:
        """Create or replace the canned policy ``name``."""
        self._call("PUT", "add-canned-policy", {"name": name}, json.dumps(policy).encode())

    def add_user(self, access_key: str, secret_key: str) -> None:
        """Create the user (or reset its secret); idempotent."""
        body = json.dumps({"secretKey": secret_key, "status": "enabled"}).encode()
        self._call(
            "PUT", "add-user", {"accessKey": access_key}, encrypt_for_admin(self.secret_key, body)
        )

    def set_user_policy(self, access_key: str, policy: str) -> None:
        """Make ``policy`` the user's only policy."""
        self._call(
            "PUT",
            "set-user-or-group-policy",
            {"policyName": policy, "userOrGroup": access_key, "isGroup": "false"},
        )


def lake_policy(bucket: str) -> dict[str, Any]:
    """Read/write objects of ``bucket`` and list it; nothing on other buckets, no bucket admin.

    What the pipeline does: list and read (loaders, Spark, consumers), write and delete
    (Delta commits, checkpoints, compaction), multipart uploads (S3A, boto3).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetBucketLocation",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }
