"""Test support shared by every package's tests (the pytest plugin, bad-input data)."""
