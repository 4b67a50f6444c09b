"""Tests of the scenario engine, held against real Sentinel-2."""
