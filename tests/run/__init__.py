"""Tests of units, plan, schedule and execution."""
