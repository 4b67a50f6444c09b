"""Tests of the site report."""
