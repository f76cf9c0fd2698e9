"""The images are built on pull requests too, run on main, and published on release tags.

Regression for #16: CI built the images only on pushes to main (pull requests never built
them), never published them, and the image test ran `--help` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _repo() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / ".github" / "workflows").is_dir() and (parent / "infra").is_dir():
            return parent
    raise FileNotFoundError(".github/workflows not found above this test")


WORKFLOWS = _repo() / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.get("on", doc.get(True))  # YAML 1.1 reads `on` as True
    return dict(doc)


def _steps_running(doc: dict[str, Any], needle: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_name, step)
        for job_name, job in doc["jobs"].items()
        for step in job.get("steps", [])
        if needle in str(step.get("run", ""))
    ]


def test_images_are_built_on_pull_requests_without_pushing() -> None:
    ci = _load("ci.yml")
    assert "pull_request" in ci["on"], "ci.yml runs on pull requests"
    builds = _steps_running(ci, "./pants package images")
    unrestricted = [
        step
        for job_name, step in builds
        if "refs/heads/main" not in f"{ci['jobs'][job_name].get('if', '')} {step.get('if', '')}"
    ]
    assert unrestricted, "an image build runs on every event, pull requests included"
    assert not any("docker push" in s["run"] or "--push" in s["run"] for s in unrestricted)


def test_image_run_test_runs_on_main_beyond_help() -> None:
    ci = _load("ci.yml")
    runs = _steps_running(ci, "tools/images/test_image_run.py")
    assert runs, "ci.yml runs every DAG step inside its image (not only --help)"
    assert all("MARKET_IMAGE_RUN=1" in step["run"] for _, step in runs)


def test_images_are_published_to_ghcr_on_release_tags() -> None:
    release = _load("release.yml")
    assert release["on"]["push"]["tags"], "release.yml runs on tags"
    pushes = _steps_running(release, "docker push")
    assert pushes, "release.yml pushes the images"
    job_name = pushes[0][0]
    job = release["jobs"][job_name]
    assert "images-v" in job["if"], "the images job runs on images-v<version> tags"
    assert job["permissions"]["packages"] == "write"
    assert all("ghcr.io/" in step["run"] for _, step in pushes)
