"""Credentials on disk and on command lines: state dir 0700, stack.env 0600, no secret in argv.

Regression tests for #16 (item 7): ``stack.env`` used to be written through the fixed name
``.stack.env.tmp`` in a directory created with the default umask, and nothing checked what
the stack's processes expose in ``/proc/<pid>/cmdline`` (readable by every local user).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from market_devstack.credentials import grant_traverse, read_env_file, stack_env_path
from market_devstack.minio import ACCESS_KEY_VAR, SECRET_KEY_VAR, ensure_credentials
from market_devstack.stack import SERVICE_NAMES, make_services
from market_testing.pytest_plugin import private_stack_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_is_0700_and_stack_env_0600_whatever_the_umask(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    old = os.umask(0o022)
    try:
        ensure_credentials(private_stack_settings(state_dir))
    finally:
        os.umask(old)
    assert _mode(state_dir) == 0o700, "the state dir holds credentials and data"
    assert _mode(state_dir / "stack.env") == 0o600


def test_an_existing_open_state_dir_is_tightened(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    os.chmod(state_dir, 0o755)  # noqa: S103 - the open mode under test
    ensure_credentials(private_stack_settings(state_dir))
    assert _mode(state_dir) == 0o700


def test_a_granted_traverse_bit_survives_credential_writes_and_only_that_one(
    tmp_path: Path,
) -> None:
    """PostgreSQL (another account) must reach its data dir below the 0700 state dir."""
    granted, plain = tmp_path / "granted", tmp_path / "plain"
    for state_dir in (granted, plain):
        state_dir.mkdir(mode=0o755)
        os.chmod(state_dir, 0o755)  # noqa: S103 - o+x from the umask, not granted
    grant_traverse(granted)
    for state_dir in (granted, plain):
        ensure_credentials(private_stack_settings(state_dir))
        ensure_credentials(private_stack_settings(state_dir))  # a second write keeps it
    assert _mode(granted) == 0o701, "search only: no listing, no reading for others"
    assert _mode(plain) == 0o700, "an o+x nobody granted is removed"


def test_stack_env_is_not_written_through_a_fixed_temporary_name(tmp_path: Path) -> None:
    """Finding: `.stack.env.tmp` (fixed name, O_TRUNC) followed a planted symlink."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("must survive\n")
    (state_dir / ".stack.env.tmp").symlink_to(victim)
    settings = private_stack_settings(state_dir)
    access, secret = ensure_credentials(settings)
    assert victim.read_text() == "must survive\n", "the planted link's target is untouched"
    values = read_env_file(stack_env_path(settings))
    assert values[ACCESS_KEY_VAR] == access and values[SECRET_KEY_VAR] == secret
    leftovers = [p.name for p in state_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [".stack.env.tmp"], "no temporary file of ours is left behind"
    assert ensure_credentials(settings) == (access, secret), "credentials are reused"


def _cmdlines() -> dict[int, str]:
    lines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:  # exited meanwhile, or not ours to read
                continue
            lines[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return lines


def test_no_secret_on_any_process_command_line(local_stack: Any) -> None:
    """Every process readable here (the running stack's Kafka, MinIO, fakesnow, and all
    others: tests, Spark JVMs) keeps the stack's credentials off its command line."""
    settings = local_stack.settings
    secrets = {
        value
        for key, value in read_env_file(stack_env_path(settings)).items()
        if key == SECRET_KEY_VAR and value
    }
    assert secrets, "the stack generated credentials"
    cmdlines = _cmdlines()
    stack_pids = set()
    for name in SERVICE_NAMES:
        # Cluster nodes and opt-in services each have their own process (none if not started).
        for service in make_services(name, settings, discover=True):
            record = service.running()
            if record is not None:
                stack_pids.add(record.pid)
    assert stack_pids and stack_pids <= set(cmdlines), "the stack's own processes are scanned"
    exposed = sorted(
        f"pid {pid}: {line[:120]}…"
        for pid, line in cmdlines.items()
        if any(s in line for s in secrets)
    )
    assert not exposed, f"secrets on process command lines: {exposed}"
