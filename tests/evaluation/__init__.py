"""Tests of scoring against a scenario's truth."""
