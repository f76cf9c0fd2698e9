"""Export model and column descriptions from dbt's manifest as compact JSON.

The GenAI layer puts this in its system prompt as schema context: what each relation is,
its grain (the last sentence of every description) and what each column means.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXPORTED_TYPES = ("model", "seed", "source")


def _relation(node: dict[str, Any]) -> str | None:
    if node.get("config", {}).get("materialized") == "ephemeral":
        return None  # compiled into its children, not queryable
    name = node.get("alias") or node.get("identifier") or node["name"]
    return ".".join(str(part) for part in (node["database"], node["schema"], name)).upper()


def model_docs(manifest: dict[str, Any]) -> dict[str, Any]:
    """``{"models": {name: {...}}, "sources": {...}, "seeds": {...}}`` from a manifest dict."""
    exported: dict[str, dict[str, Any]] = {f"{t}s": {} for t in EXPORTED_TYPES}
    project = manifest.get("metadata", {}).get("project_name")
    nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    for node in nodes.values():
        kind = node.get("resource_type")
        if kind not in EXPORTED_TYPES or (project and node.get("package_name") != project):
            continue  # tests, macros and installed packages are not schema context
        name = f"{node['source_name']}.{node['name']}" if kind == "source" else node["name"]
        exported[f"{kind}s"][name] = {
            "relation": _relation(node),
            "materialized": node.get("config", {}).get("materialized"),
            "description": " ".join((node.get("description") or "").split()),
            "columns": {
                column["name"]: " ".join((column.get("description") or "").split())
                for column in node.get("columns", {}).values()
            },
        }
    return {kind: dict(sorted(items.items())) for kind, items in exported.items()}


def export_docs(manifest_path: Path, out_path: Path) -> dict[str, Any]:
    """Write :func:`model_docs` of ``manifest_path`` to ``out_path``; return it too."""
    docs = model_docs(json.loads(manifest_path.read_text()))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(docs, indent=2, sort_keys=False) + "\n")
    return docs
