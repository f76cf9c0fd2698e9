"""Peak-memory sampling against real processes (a child that holds a known allocation)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from market_benchmarks.memory import PeakMemory, process_table, tree

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")

HOLD_MB = 300
CHILD = f"""
import sys, time
block = bytearray({HOLD_MB} * 2**20)
for i in range(0, len(block), 4096):  # touch every page so it is resident
    block[i] = 1
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def holder():
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.communicate("\n", timeout=30)


def test_tree_includes_descendants_and_honours_exclusions(holder):
    table = process_table()
    mine = tree([os.getpid()], table)
    assert holder.pid in mine and os.getpid() in mine
    assert holder.pid not in tree([os.getpid()], table, exclude={holder.pid})


def test_peak_counts_a_child_once_and_groups_are_exclusive(holder):
    with PeakMemory(
        {"child": lambda: [holder.pid], "parent": lambda: [os.getpid()]}, interval_s=0.05
    ) as sampler:
        pass
    peaks = sampler.peaks
    assert peaks["child"] >= HOLD_MB * 2**20
    # The parent's tree contains the child, but the child is already counted in "child".
    assert peaks["parent"] < HOLD_MB * 2**20
    assert peaks["total"] >= peaks["child"] + peaks["parent"] - 2**20
    assert sampler.samples >= 2
