"""MinIO built from its Go module at a pinned release, with generated credentials.

proxy.golang.org only serves MinIO as pseudo-versions (its ``RELEASE.*`` tags are not
semver), so the release is pinned by the pseudo-version of the tag's commit.

Two identities, both generated into ``stack.env``: the root user (``MINIO_ROOT_*``) is
only for setup (the lake bucket, the policy, the pipeline user); every client reads
``MARKET_S3__*``, the pipeline user, whose policy allows objects of the lake bucket and
nothing else (no bucket creation, no other bucket). A stack from before this split (its
``MARKET_S3__*`` are the root account) keeps working and is migrated the next time MinIO
starts.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from market_common import clients
from market_common.runtime import file_lock
from market_devstack.credentials import (
    ensure_generated,
    read_env_file,
    replace_generated,
    stack_env_path,
)
from market_devstack.errors import ArtifactResolutionError
from market_devstack.minio_admin import MinioAdmin, lake_policy
from market_devstack.service import Service
from market_devstack.tools import cache_root, find_go

if TYPE_CHECKING:
    from rich.console import Console

    from market_common.settings import MarketSettings

MINIO_RELEASE = "RELEASE.2025-09-07T16-13-09Z"
MINIO_COMMIT = "07c3a429bfed433e49018cb0f78a52145d4bedeb"
MINIO_MODULE = "github.com/minio/minio"
MINIO_MODULE_VERSION = "v0.0.0-20250907161309-07c3a429bfed"

ACCESS_KEY_VAR = "MARKET_S3__ACCESS_KEY_ID"
SECRET_KEY_VAR = "MARKET_S3__SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
ROOT_USER_VAR = "MINIO_ROOT_USER"
ROOT_PASSWORD_VAR = "MINIO_ROOT_PASSWORD"  # noqa: S105 - a variable name
PIPELINE_POLICY = "market-pipeline-lake"


def minio_binary_path(release: str = MINIO_RELEASE) -> Path:
    return cache_root() / "minio" / release / "minio"


def minio_ldflags() -> str:
    """The version stamps MinIO's own Makefile sets (shown by ``minio --version``)."""
    stamp = MINIO_RELEASE.removeprefix("RELEASE.")
    date, clock = stamp.split("T")
    version = f"{date}T{clock.replace('-', ':')}"
    pkg = f"{MINIO_MODULE}/cmd"
    return " ".join(
        [
            "-s",
            "-w",
            f"-X {pkg}.Version={version}",
            f"-X {pkg}.ReleaseTag={MINIO_RELEASE}",
            f"-X {pkg}.CommitID={MINIO_COMMIT}",
            f"-X {pkg}.ShortCommitID={MINIO_COMMIT[:12]}",
            f"-X {pkg}.CopyrightYear={date[:4]}",
        ]
    )


def build_minio(console: Console | None = None) -> Path:
    """``go install github.com/minio/minio@<pinned>`` once into the cache; returns the binary.

    Go verifies the module and every dependency against go.sum / sum.golang.org.
    """
    binary = minio_binary_path()
    if binary.is_file():
        return binary
    with file_lock(binary.parent / ".lock"):
        if binary.is_file():
            return binary
        go = find_go()
        build_dir = binary.parent / ".build"
        build_dir.mkdir(parents=True, exist_ok=True)
        if console is not None:
            console.print(
                f"building MinIO {MINIO_RELEASE} with `go install` (first run only; ~10 min on "
                f"2 cores) into {binary} …"
            )
        started = time.monotonic()
        env = dict(os.environ, CGO_ENABLED="0", GOBIN=str(build_dir), GOFLAGS="-trimpath")
        argv = [
            go, "install", "-tags", "kqueue", "-ldflags", minio_ldflags(),
            f"{MINIO_MODULE}@{MINIO_MODULE_VERSION}",
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        built = build_dir / "minio"
        if proc.returncode != 0 or not built.is_file():
            raise ArtifactResolutionError(
                f"building MinIO {MINIO_RELEASE} failed (exit {proc.returncode}). Check that "
                f"the Go module proxy ($GOPROXY) is reachable and Go is 1.24+, then rerun "
                f"`market-devstack up`.\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
        shutil.move(str(built), str(binary))
        (binary.parent / "BUILD_INFO").write_text(
            f"{MINIO_MODULE}@{MINIO_MODULE_VERSION} ({MINIO_RELEASE}) built in "
            f"{time.monotonic() - started:.0f}s\n"
        )
        if console is not None:
            console.print(f"MinIO built in {time.monotonic() - started:.0f}s")
    return binary


def _pipeline_generators() -> dict[str, Any]:
    return {
        ACCESS_KEY_VAR: lambda: "pipeline-" + secrets.token_hex(6),
        SECRET_KEY_VAR: lambda: secrets.token_urlsafe(30),
    }


def _is_legacy(values: dict[str, str]) -> bool:
    """``stack.env`` from before the root/pipeline split: ``MARKET_S3__*`` are the root."""
    return bool(values.get(ACCESS_KEY_VAR)) and not values.get(ROOT_USER_VAR)


def root_credentials(settings: MarketSettings) -> tuple[str, str]:
    """MinIO's root user/password (setup only): generated once into ``stack.env`` (0600).

    ``stack.env`` is the single source of truth because MinIO's data directory is bound to
    the root credentials it was first started with.
    """
    values = read_env_file(stack_env_path(settings))
    if _is_legacy(values):
        return values[ACCESS_KEY_VAR], values[SECRET_KEY_VAR]
    root = ensure_generated(
        settings,
        {
            ROOT_USER_VAR: lambda: "root-" + secrets.token_hex(6),
            ROOT_PASSWORD_VAR: lambda: secrets.token_urlsafe(30),
        },
        "MinIO root credentials (setup only: bucket, policy, pipeline user)",
    )
    return root[ROOT_USER_VAR], root[ROOT_PASSWORD_VAR]


def ensure_credentials(settings: MarketSettings) -> tuple[str, str]:
    """The credentials every S3 client uses: the pipeline user (generated once, 0600).

    An unmigrated older stack answers with its root credentials until MinIO restarts.
    """
    root = root_credentials(settings)
    if _is_legacy(read_env_file(stack_env_path(settings))):
        return root
    values = ensure_generated(
        settings, _pipeline_generators(), "MinIO pipeline user (the lake bucket only)"
    )
    return values[ACCESS_KEY_VAR], values[SECRET_KEY_VAR]


def migrate_legacy_credentials(settings: MarketSettings) -> bool:
    """Move an older stack's root credentials to ``MINIO_ROOT_*`` and give the clients a
    pipeline user instead; only while MinIO is stopped (its clients read ``stack.env``)."""
    values = read_env_file(stack_env_path(settings))
    if not _is_legacy(values):
        return False
    pipeline = {name: make() for name, make in _pipeline_generators().items()}
    replace_generated(
        settings,
        {
            ROOT_USER_VAR: values[ACCESS_KEY_VAR],
            ROOT_PASSWORD_VAR: values[SECRET_KEY_VAR],
            **pipeline,
        },
        "MinIO root (setup only) and pipeline user (the lake bucket only)",
    )
    return True


def with_credentials(settings: MarketSettings, *, root: bool = False) -> MarketSettings:
    """``settings`` whose S3 section points at this stack's MinIO: the pipeline user's
    credentials (``root=True``: the root account, for the stack's own setup)."""
    access, secret = root_credentials(settings) if root else ensure_credentials(settings)
    stack = settings.stack
    s3 = settings.s3.model_copy(
        update={
            "access_key_id": SecretStr(access),
            "secret_access_key": SecretStr(secret),
            "endpoint_url": f"http://{stack.host}:{stack.minio_port}",
            "path_style": True,
        }
    )
    return settings.model_copy(update={"s3": s3})


class MinioService(Service):
    """``minio server <data> --address host:port --console-address host:console``."""

    name = "minio"
    startup_timeout_s = 60.0

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.stack.host}:{self.stack.minio_port}"

    def ports(self) -> list[int]:
        return [self.stack.minio_port, self.stack.minio_console_port]

    def endpoints(self) -> dict[str, str]:
        return {
            "s3": self.endpoint_url,
            "console": f"http://{self.stack.host}:{self.stack.minio_console_port}",
        }

    def prepare(self) -> None:
        build_minio(self.console)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate_legacy_credentials(self.settings) and self.console is not None:
            self.console.print("MinIO: clients now use the pipeline user (root kept for setup)")
        ensure_credentials(self.settings)

    def environment(self) -> dict[str, str]:
        access, secret = root_credentials(self.settings)
        env = dict(os.environ)
        env.update(
            MINIO_ROOT_USER=access,
            MINIO_ROOT_PASSWORD=secret,
            MINIO_UPDATE="off",
            MINIO_CALLHOME_ENABLE="off",
            MINIO_REGION=self.settings.s3.region,
        )
        return env

    def command(self) -> list[str]:
        return [
            str(minio_binary_path()),
            "server",
            str(self.data_dir),
            "--address",
            f"{self.stack.host}:{self.stack.minio_port}",
            "--console-address",
            f"{self.stack.host}:{self.stack.minio_console_port}",
        ]

    def probe(self) -> bool:
        url = f"{self.endpoint_url}/minio/health/live"
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - fixed http URL
            return bool(response.status == 200)

    def after_healthy(self) -> None:
        """As root: the lake bucket, its policy and the pipeline user (all idempotent)."""
        bucket = self.settings.s3.bucket
        ensure_bucket(with_credentials(self.settings, root=True), bucket)
        pipeline = ensure_credentials(self.settings)
        root = root_credentials(self.settings)
        if pipeline == root:
            return  # an unmigrated older stack: its clients are root until the next start
        admin = MinioAdmin(self.endpoint_url, *root, region=self.settings.s3.region)
        admin.add_policy(PIPELINE_POLICY, lake_policy(bucket))
        admin.add_user(*pipeline)
        admin.set_user_policy(pipeline[0], PIPELINE_POLICY)


def s3_client(settings: MarketSettings) -> Any:
    """A boto3 S3 client for the stack's MinIO: the shared factory, nothing local."""
    return clients.s3_client(settings)


def ensure_bucket(settings: MarketSettings, bucket: str) -> None:
    from botocore.exceptions import ClientError

    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
