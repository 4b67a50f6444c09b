"""Change dating's parameters and vocabulary: :class:`ChangeParams`, the change classes
(land cover plus ``bright``), the change types and the rule that maps a class change to a
type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nampo.products.classes import BARE, BUILT, DARK, ICE, VEGETATION, WATER
from nampo.products.variables import CLASSES

if TYPE_CHECKING:
    from nampo.sites import Site

__all__ = [
    "BRIGHT",
    "CHANGE_CLASSES",
    "COAL_COVER",
    "COAL_REMOVED",
    "CONSTRUCTION",
    "DEMOLITION",
    "DRAINAGE",
    "NEW_TANK",
    "NO_CHANGE",
    "NO_MONTH",
    "RECLAMATION",
    "TYPES",
    "TYPE_CODES",
    "UNCLASSIFIED",
    "ChangeParams",
    "change_classes",
    "change_type",
    "season_mask",
]

BRIGHT = 7
"""Extra class of the change classes: a built surface brighter than ``bright_blue`` in blue
(white tanks and roofs)."""
CHANGE_CLASSES = {**CLASSES, BRIGHT: "bright"}
"""Classes of ``class_before``/``class_after``: the land-cover classes plus ``bright``."""

TYPES = {
    1: "drainage",
    2: "reclamation",
    3: "construction",
    4: "coal_cover",
    5: "new_tank",
    6: "demolition",
    7: "unclassified",
    8: "coal_removed",
}
"""Change types (0: no change). ``reclamation`` covers new piers and land won from water;
``demolition`` covers clearing of vegetation too; ``coal_removed`` is coal cleared from a
yard, down to whatever was under it (its codes follow the older types', so stored codes
keep their meaning)."""
TYPE_CODES = {name: code for code, name in TYPES.items()}
"""Change type name -> code."""
DRAINAGE, RECLAMATION, CONSTRUCTION, COAL_COVER, NEW_TANK, DEMOLITION, UNCLASSIFIED = range(1, 8)
COAL_REMOVED = 8

NO_MONTH = -1
"""``last_before``/``first_after`` of a pixel without change."""
NO_CHANGE = {
    "type": 0, "class_before": 0, "class_after": 0, "n_before": 0, "n_after": 0,
    "confidence": 0, "last_before": NO_MONTH, "first_after": NO_MONTH,
    "magnitude": np.nan, "shape_change": np.nan,
}  # fmt: skip
"""Each output of change dating at a pixel without change."""


@dataclass(frozen=True)
class ChangeParams:
    """Parameters of change dating (defaults: ``docs/change.md`` explains each)."""

    min_before: int = 3
    """Clear months a before state needs (of any class; ``purity`` of them its own)."""
    min_after: int = 2
    """Clear months an after state needs: a change must last."""
    purity: float = 0.75
    """Share of a state's clear months that must be of its class."""
    state_months: int = 12
    """Months either side of a change over which its before and after states are judged
    (a year: every season once); earlier and later months may hold other changes."""
    max_transition: int = 8
    """Most months between the last clear month before and the first clear month after."""
    transition_cost: float = 0.5
    """Score lost per clear month inside the transition (a full mismatch costs 1)."""
    bright_blue: float = 0.25
    """Blue reflectance above which a built surface is ``bright`` (tank roofs reflect 0.4,
    ordinary roofs and paving under 0.2)."""
    min_brightness_step: float = 0.035
    """Smallest step in mean reflectance that is a change on a surface that stays built
    (paving to roofs is about 0.06; scene gains and class variety give about 0.005)."""
    min_magnitude: float = 0.06
    """A change must move the surface's reflectance (six bands, between the states'
    medians) by at least this much, or its colour by ``min_shape_change``: a mixed pixel
    whose class flips across a rule's threshold moves little in either. 0.06 is about
    2.5 times the month-to-month change of a stable pixel's six-band median."""
    min_shape_change: float = 0.1
    """... or move its normalised differences (NDVI, MNDWI, NDBI, red-blue slope) by at
    least this much together: bare soil to a painted roof of the same brightness. 0.1 is
    ten times the month-to-month change of a stable pixel's index medians."""
    min_water_fraction: float = 0.5
    """A class change to or from water must have changed at least this share of the pixel
    (linear unmixing against the tile's pure spectra of the two classes): the truth, and
    an analyst's map, count a pixel as changed when more than half of it changed; a shore
    pixel whose mix of land and water shifts by a quarter is not new water."""
    min_edge_share: float = 0.5
    """A pixel at the edge of a changed area must have changed at least this share as much
    as the fully changed pixels beside it (the ratio of their six-band magnitudes, rule 11,
    ``edges.py``): reflectance mixes linearly within a pixel, and the truth, like an
    analyst's map, counts a pixel as changed when more than half of it changed. 0 turns
    the test off."""
    cleared_then_built: bool = True
    """Rule 12: built ground cleared to bare for at least `min_after` clear months, then
    built on again, is a construction when the last step is over the month-to-month
    noise of a stable pixel (`min_magnitude` / 2.5), however little the new roof differs
    from the paving it replaced. False turns the rule off."""
    veil_rise: float = 0.04
    """A month is under a veil of haze at a pixel when its blue rose more than this over
    the pixel's recent clear months (``veils.py``): haze brightens blue the most of all
    bands; a clear pixel drifts under about 0.03 from month to month."""
    veil_min_px: int = 400
    """... over a patch of at least this many pixels (4 ha: rule 0 of before/after change
    sizes clouds so too; haze is large, a new building is not). 0 turns the test off."""
    ice_months: tuple[int, ...] = (12, 1, 2, 3)
    """Months in which water may freeze: water seen only in them does not count."""
    growing_months: tuple[int, ...] = (5, 6, 7, 8, 9)
    """Months in which vegetation is reliably green."""

    @classmethod
    def for_site(cls, site: Site) -> ChangeParams:
        """The defaults with the site's seasons (its climate: ``docs/sites.md``)."""
        seasons = site.seasons
        return cls(ice_months=seasons.ice_months, growing_months=seasons.growing_months)


def change_type(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Change type code from the change classes before and after (0 where equal).

    >>> change_type(np.array([1, 2]), np.array([3, 5])).tolist()
    [1, 4]
    """
    b, a = np.asarray(before), np.asarray(after)
    land = (b != WATER) & (b > 0)
    rules = [
        ((b == WATER) & np.isin(a, (BUILT, BRIGHT)), RECLAMATION),
        ((b == WATER) & np.isin(a, (BARE, VEGETATION, DARK)), DRAINAGE),
        (land & (a == BRIGHT), NEW_TANK),
        # Coal gone is its own story (stocks running down), whatever it leaves: the
        # measurement cannot tell a paved pad from a roof, nor bare ground from a clearing.
        ((b == DARK) & np.isin(a, (BUILT, BARE, VEGETATION)), COAL_REMOVED),
        (np.isin(b, (BARE, VEGETATION, DARK)) & (a == BUILT), CONSTRUCTION),
        (land & (b != DARK) & (a == DARK), COAL_COVER),
        (np.isin(b, (BUILT, BRIGHT, DARK)) & np.isin(a, (BARE, VEGETATION)), DEMOLITION),
        ((b == VEGETATION) & (a == BARE), DEMOLITION),
    ]
    out = np.where((b != a) & (b > 0) & (a > 0), UNCLASSIFIED, 0).astype("uint8")
    for test, code in reversed(rules):
        out = np.where(test & (b != a), code, out).astype("uint8")
    return out


def change_classes(landcover: np.ndarray, blue: np.ndarray, params: ChangeParams) -> np.ndarray:
    """Change class per month and pixel: the land-cover class, ``built`` split by brightness,
    0 for gaps (no clear observation, or ice)."""
    cls = np.asarray(landcover).astype("uint8").copy()
    with np.errstate(invalid="ignore"):
        cls[(cls == BUILT) & (np.asarray(blue) >= params.bright_blue)] = BRIGHT
    cls[cls == ICE] = 0
    return cls


def season_mask(moy: np.ndarray, code: int, params: ChangeParams) -> np.ndarray:
    """Months (of the series) in which class `code` is reliably seen as itself."""
    if code == WATER:
        return ~np.isin(moy, params.ice_months)
    return np.isin(moy, params.growing_months)
