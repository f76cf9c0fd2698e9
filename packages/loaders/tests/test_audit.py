"""Audit decisions: new, changed (ETag or size), unchanged, full refresh; latest row wins."""

from __future__ import annotations

from datetime import datetime, timedelta

from market_loaders.audit import AuditRecord, latest_by_key, plan_files
from market_loaders.objects import ObjectInfo

T0 = datetime(2024, 1, 1)


def obj(key: str, etag: str = "e1", size: int = 10) -> ObjectInfo:
    return ObjectInfo(key=key, etag=etag, size=size, last_modified=T0)


def rec(key: str, etag: str = "e1", size: int = 10, minutes: int = 0) -> AuditRecord:
    return AuditRecord(key, etag, size, 5, T0 + timedelta(minutes=minutes))


def test_new_changed_and_unchanged_files() -> None:
    objects = [obj("new"), obj("same"), obj("etag", etag="e2"), obj("size", size=11)]
    records = [rec("same"), rec("etag"), rec("size")]
    plan = plan_files(objects, records)
    assert {o.key: r for o, r in plan.to_load} == {
        "new": "new",
        "etag": "changed",
        "size": "changed",
    }
    assert [o.key for o in plan.skipped] == ["same"]


def test_full_refresh_loads_everything() -> None:
    objects = [obj("a"), obj("b")]
    plan = plan_files(objects, [rec("a"), rec("b")], full_refresh=True)
    assert [(o.key, r) for o, r in plan.to_load] == [("a", "full-refresh"), ("b", "full-refresh")]
    assert plan.skipped == []


def test_latest_audit_row_decides() -> None:
    # loaded as e1, then re-loaded as e2: the object now at e2 is unchanged.
    records = [rec("a", etag="e2", minutes=5), rec("a", etag="e1", minutes=0)]
    assert latest_by_key(records)["a"].etag == "e2"
    plan = plan_files([obj("a", etag="e2")], records)
    assert plan.to_load == [] and [o.key for o in plan.skipped] == ["a"]
    plan = plan_files([obj("a", etag="e1")], records)
    assert [r for _, r in plan.to_load] == ["changed"]
