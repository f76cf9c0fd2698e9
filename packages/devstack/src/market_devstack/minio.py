"""MinIO built from its Go module at a pinned release, with generated root credentials.

proxy.golang.org only serves MinIO as pseudo-versions (its ``RELEASE.*`` tags are not
semver), so the release is pinned by the pseudo-version of the tag's commit.
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
from market_devstack.credentials import ensure_generated
from market_devstack.errors import ArtifactResolutionError
from market_devstack.process import file_lock
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


def ensure_credentials(settings: MarketSettings) -> tuple[str, str]:
    """MinIO root user/password: generated on first use into ``stack.env`` (0600), then reused.

    ``stack.env`` is the single source of truth because MinIO's data directory is bound to
    the credentials it was first started with.
    """
    values = ensure_generated(
        settings,
        {
            ACCESS_KEY_VAR: lambda: "market-" + secrets.token_hex(6),
            SECRET_KEY_VAR: lambda: secrets.token_urlsafe(30),
        },
        "MinIO root credentials",
    )
    return values[ACCESS_KEY_VAR], values[SECRET_KEY_VAR]


def with_credentials(settings: MarketSettings) -> MarketSettings:
    """``settings`` whose S3 section points at this stack's MinIO with its credentials."""
    access, secret = ensure_credentials(settings)
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
        ensure_credentials(self.settings)

    def environment(self) -> dict[str, str]:
        access, secret = ensure_credentials(self.settings)
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
        """Create the lake bucket from the settings (idempotent)."""
        ensure_bucket(with_credentials(self.settings), self.settings.s3.bucket)


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
