"""Scoring a store's events and activity against a scenario's truth (docs/change.md)."""
