"""A real browser for tests: headless Chromium from the OS packages, driven by Selenium.

Used by every test that looks at a page the platform serves or writes (Airflow's UI, the
HTML report). Chromium and chromedriver come from the OS (`apt-get install chromium
chromium-driver`, tools/ci/prerequisites.sh); Selenium Manager is never used, since it
would download a browser. Screenshots go to :func:`artifacts_dir`, which CI keeps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ARTIFACTS_VAR = "MARKET_TEST_ARTIFACTS_DIR"


def artifacts_dir(name: str) -> Path:
    """Where screenshots go: ``$MARKET_TEST_ARTIFACTS_DIR/<name>`` (default under /tmp)."""
    root = Path(os.environ.get(ARTIFACTS_VAR, "/tmp/market-test-artifacts"))  # noqa: S108
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def chromium(window: str = "1600,1000") -> Iterator[Any]:
    """A headless Chromium WebDriver (``pytest.fail`` naming the packages when absent)."""
    import pytest
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(binary).is_file() and Path(driver_path).is_file()):
        pytest.fail(
            "chromium and chromedriver are required: `apt-get install chromium chromium-driver`",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={window}", "--disable-gpu",
                # file:// pages may load their own relative images.
                "--allow-file-access-from-files"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
