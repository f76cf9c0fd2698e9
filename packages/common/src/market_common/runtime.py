"""Helpers for starting child Python processes that see the same code as their parent."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def python_path() -> str:
    """The parent's ``sys.path`` as an absolute ``PYTHONPATH``.

    Under a PEX or a Pants test sandbox first-party code is on ``sys.path`` only (often as
    relative paths), so a child started with ``sys.executable -m pkg`` from another working
    directory would not find it.
    """
    return os.pathsep.join(os.path.abspath(p) for p in sys.path if p)


def child_env(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default ``os.environ``) plus ``extra`` with ``PYTHONPATH`` set from ``sys.path``."""
    env = dict(os.environ if base is None else base)
    env.update(extra or {})
    env["PYTHONPATH"] = python_path()
    return env
