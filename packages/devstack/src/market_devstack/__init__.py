"""Embedded local stack: Kafka (KRaft), MinIO and the fakesnow Snowflake emulator on loopback.

Entry points: the ``market-devstack`` CLI (:mod:`market_devstack.cli`), the Python API
in :mod:`market_devstack.stack` and the pytest plugin :mod:`market_testing.pytest_plugin`.
Nothing heavy is imported here.
"""
