"""Tests of change dating, events, activity, before/after change."""
