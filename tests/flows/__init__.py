"""Tests of the Prefect flows, end to end against a real server."""
