"""The product version: which version of what a unit computes made a unit's chunks.

It changes when what a unit computes changes (a product added, a method that gives other
values), not at every commit: it is raised by hand with the change, and :data:`HISTORY`
says what each version brought. Every completion record carries the version that wrote
it (``product_version``); a unit recorded with an older one is *stale*: complete, but not
what the product computes today (``nampo store status``; backfill and monitoring
recompute stale units of their period unless told to leave them; ``docs/store.md``).
Records written before versions were recorded count as version 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HISTORY", "PRODUCT_VERSION", "record_version", "is_stale"]

HISTORY: dict[int, str] = {
    0: "records written before product versions were recorded (nampo 0.1 and earlier)",
    1: "monthly median composites, indices, land-cover classes and change metrics, the "
    "tiles' baselines, and facility activity (vessels, ice, coal) per unit",
    2: "vessels counted one by one (a group of ship-like berth pixels split by its shape "
    "along and across its berth), berth pixels those that showed water in a clear scene, "
    "each scene's berth pixels of water's colour stored (issue 18)",
    3: "water at the berths read as NDSI at least 0.6 or NIR near the scene's open water "
    "(the tile's water away from the berths, when darker than 0.05: not under haze or "
    "fog): clear sea water, whose NDSI is often under 0.6, no longer makes berth pixels "
    "structure nor hides the ships on it (issue 18)",
    4: "berth pixels are the berth outlines less their pixels beside land, no longer less "
    "their whole one-pixel edge: a narrow berth along a pier keeps its pixels on the open "
    "water, where the ships lie (issue 18)",
    5: "a berth pixel is structure only when it showed no water in two clear scenes of the "
    "month or more: one clear scene cannot tell a moored ship from a structure, and a ship "
    "in a month's only clear scene no longer hides itself (issue 18)",
    6: "each tile's baseline stores its looks at the berths (clear scenes, and those that "
    "showed water, per berth pixel); a berth pixel that showed water in the baseline period "
    "is never structure: a ship moored in every clear scene of a month is counted where "
    "ships came and went in the baseline (issue 18)",
}

PRODUCT_VERSION = max(HISTORY)
"""The version this code writes."""


def record_version(record: Mapping[str, Any]) -> int:
    """The product version of a completion record (0 when it predates versions)."""
    return int(record.get("product_version", 0))


def is_stale(record: Mapping[str, Any]) -> bool:
    """Whether a completion record was written by an older product version."""
    return record_version(record) < PRODUCT_VERSION
