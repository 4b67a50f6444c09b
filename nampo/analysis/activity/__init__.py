"""Facility activity: vessels at the berths and ice on the water in every clear scene, coal
on the yards every month (``docs/change.md``, "Activity").

Computed inside each (tile, month) unit from the scenes it has read anyway
(:func:`unit_activity`, :mod:`.unit`), stored with the unit
(``nampo/activity/<tile>/<YYYY-MM>.json``, ``docs/store.md``), and assembled into
site-wide series when read (:func:`vessel_series`, :func:`ice_series`,
:func:`coal_series`, :mod:`.series`). A unit stores only partial counts of its tile, so
units stay independent and a re-run rewrites the same bytes. Each tile's baseline stores
its looks at the berths (:func:`berth_looks`, ``nampo/activity/<tile>/baseline.json``):
what the month units remember of the baseline year, to tell a ship that stays a month from
a structure.
"""

from nampo.analysis.activity.params import ActivityParams
from nampo.analysis.activity.series import (
    coal_series,
    describe,
    ice_series,
    merge_objects,
    vessel_series,
)
from nampo.analysis.activity.unit import (
    FacilityPixels,
    berth_looks,
    facility_pixels,
    unit_activity,
)

__all__ = [
    "ActivityParams",
    "FacilityPixels",
    "berth_looks",
    "coal_series",
    "describe",
    "facility_pixels",
    "ice_series",
    "merge_objects",
    "unit_activity",
    "vessel_series",
]
