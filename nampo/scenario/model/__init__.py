"""The scenario format: a declarative description of a site, its land cover and its events.

A scenario is a YAML file (see ``docs/scenario.md``). :func:`load_scenario` reads and
validates it; every error names the field (``events[3].start``) and the problem.
"""

from nampo.scenario.model.base import LonLat
from nampo.scenario.model.cover import (
    CLASS_CODES,
    GROUND_CLASSES,
    Area,
    Cover,
    Facility,
    LandCover,
    LandcoverSpec,
    Mixture,
    WaterType,
)
from nampo.scenario.model.events import (
    ACTIVITY_EVENTS,
    DEFAULT_TARGET,
    Event,
    EventType,
    IceSeason,
    Progress,
    Ships,
)
from nampo.scenario.model.scenario import Scenario, area_shape, load_scenario, parse_scenario
from nampo.scenario.model.site import (
    LAUNCHES,
    Acquisitions,
    Climate,
    GridSpec,
    MgrsTile,
    Period,
    Platform,
)

__all__ = [
    "ACTIVITY_EVENTS",
    "CLASS_CODES",
    "DEFAULT_TARGET",
    "GROUND_CLASSES",
    "LAUNCHES",
    "Acquisitions",
    "Area",
    "Climate",
    "Cover",
    "Event",
    "EventType",
    "Facility",
    "GridSpec",
    "IceSeason",
    "LandCover",
    "LandcoverSpec",
    "LonLat",
    "MgrsTile",
    "Mixture",
    "Period",
    "Platform",
    "Progress",
    "Scenario",
    "Ships",
    "WaterType",
    "area_shape",
    "load_scenario",
    "parse_scenario",
]
