"""Per-pixel change dating over a site's monthly series: did a lasting change happen, when,
how large, and from which class to which. A categorical break search in the spirit of
BFAST and CCDC/COLD, each rule a sentence (``docs/change.md``, "Change dating").

:func:`detect` dates one tile's arrays (:mod:`.search`); :func:`change_map` runs it tile by
tile with xarray and Dask (:mod:`.maps`); :class:`ChangeParams`, the change classes and
types are in :mod:`.params`.
"""

from nampo.analysis.dating.maps import OUTPUTS, change_dates, change_map
from nampo.analysis.dating.params import (
    BRIGHT,
    CHANGE_CLASSES,
    COAL_COVER,
    COAL_REMOVED,
    CONSTRUCTION,
    DEMOLITION,
    DRAINAGE,
    NEW_TANK,
    NO_CHANGE,
    NO_MONTH,
    RECLAMATION,
    TYPE_CODES,
    TYPES,
    UNCLASSIFIED,
    ChangeParams,
    change_classes,
    change_type,
    season_mask,
)
from nampo.analysis.dating.search import detect

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
    "OUTPUTS",
    "RECLAMATION",
    "TYPES",
    "TYPE_CODES",
    "UNCLASSIFIED",
    "ChangeParams",
    "change_classes",
    "change_dates",
    "change_map",
    "change_type",
    "detect",
    "season_mask",
]
