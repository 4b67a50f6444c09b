"""Tests of the whole pipeline against a scenario's truth."""
