"""What several command groups of the ``nampo`` command line share."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_SCENARIO", "period_args"]

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "nampo.yaml"
"""The built-in Nampo scenario (the default site of ``process``, ``events``)."""


def period_args(p) -> None:
    """``--first`` / ``--last``: a sub-range of the store's months."""
    p.add_argument("--first", metavar="YYYY-MM", help="first month (default: the store's)")
    p.add_argument("--last", metavar="YYYY-MM", help="last month (default: the store's)")
