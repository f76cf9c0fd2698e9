"""Shared settings, logging, clients and record contracts of the market-data platform."""
