"""Run ledger: one object-store entry per idempotency key of a completed produce run.

Kafka's idempotent producer de-duplicates retries inside one producer session only; a
process that runs again (an Airflow task retry after success, a cleared task) would put
the same records on the topic under new offsets, and the raw zone, an archive of the
topic, would keep them twice. With an idempotency key, a produce command first looks for
its ledger entry and sends nothing when it exists; the entry is written only after every
record was acknowledged. So a retry of a *completed* run is exactly once, while a run that
failed or was interrupted leaves no entry and its retry sends everything again (at least
once; Spark's dedup and the loaders' MERGE absorb the overlap).

The entry is not a lock: two runs with the same key at the same time could both send.
Airflow runs one try of a task instance at a time, which is the case this is built for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from market_common.clients import s3_client
from market_common.logging import get_logger
from market_common.settings import MarketSettings
from market_ingest.errors import IngestError

log = get_logger(__name__)

LEDGER_DIR = "ingest-ledger"


class LedgerError(IngestError):
    """The run ledger could not be read, so whether the key was produced is unknown."""


@dataclass(frozen=True)
class RunLedger:
    """The ledger entry of ``key`` for ``command`` (``backfill`` / ``stream``)."""

    settings: MarketSettings
    command: str
    key: str

    @property
    def object_key(self) -> str:
        """``<checkpoint_prefix>/ingest-ledger/<command>/<sha256(key)[:32]>.json``: keys may
        hold any characters (Airflow run ids have ``:`` and ``+``), object names stay plain."""
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:32]
        prefix = self.settings.s3.checkpoint_prefix.strip("/")
        return f"{prefix}/{LEDGER_DIR}/{self.command}/{digest}.json"

    @property
    def uri(self) -> str:
        return f"s3://{self.settings.s3.bucket}/{self.object_key}"

    def read(self) -> dict[str, Any] | None:
        """The entry, or ``None`` if the key was never produced to completion.

        Any other failure raises :class:`LedgerError`: sending without knowing could
        duplicate a completed run, so the caller fails before sending anything.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = (
                s3_client(self.settings)
                .get_object(Bucket=self.settings.s3.bucket, Key=self.object_key)["Body"]
                .read()
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise LedgerError(f"could not read the run ledger {self.uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise LedgerError(f"could not read the run ledger {self.uri}: {exc}") from exc
        entry: dict[str, Any] = json.loads(body)
        return entry

    def write(self, arguments: dict[str, Any], summary: dict[str, Any]) -> bool:
        """Record a fully acknowledged run; ``False`` (logged) if the store refused.

        A failed write does not fail the run: its records are on the topic, and a later
        retry would only send them again, which downstream dedup absorbs.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        entry = {
            "key": self.key,
            "command": self.command,
            "arguments": arguments,
            "summary": summary,
            "produced_at": datetime.now(UTC).isoformat(),
        }
        try:
            s3_client(self.settings).put_object(
                Bucket=self.settings.s3.bucket,
                Key=self.object_key,
                Body=json.dumps(entry, default=str, sort_keys=True).encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError) as exc:
            log.error(
                "run ledger not written: a retry with this idempotency key sends again",
                extra={"ledger": self.uri, "error": str(exc)[:200]},
            )
            return False
        return True
