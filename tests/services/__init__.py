"""Tests of the local STAC API."""
