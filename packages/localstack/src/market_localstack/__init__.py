"""Embedded local stack: Kafka (KRaft), MinIO and the fakesnow Snowflake emulator on loopback.

Entry points: the ``market-localstack`` CLI (:mod:`market_localstack.cli`), the Python API
in :mod:`market_localstack.stack` and the pytest plugin :mod:`market_localstack.pytest_plugin`.
Nothing heavy is imported here.
"""
