"""Tests of the products a unit computes."""
