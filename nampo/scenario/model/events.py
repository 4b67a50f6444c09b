"""A scenario's events: land-cover changes (their type, window, geometry and progress)
and the activity events (vessel visits, seasonal ice)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from nampo.scenario.model.base import LonLat, Model, ring
from nampo.scenario.model.cover import LandCover

__all__ = [
    "ACTIVITY_EVENTS",
    "DEFAULT_TARGET",
    "Event",
    "EventType",
    "IceSeason",
    "Progress",
    "Ships",
]


class Progress(StrEnum):
    """How a land-cover change spreads over its geometry between start and end."""

    step = "step"
    """Every pixel changes on the end date."""
    linear = "linear"
    """Pixels change in a spatially coherent random order, evenly spread over the window."""
    edge_inward = "edge_inward"
    """Pixels change from the polygon's edge towards its centre (a draining pond)."""
    sweep = "sweep"
    """Pixels change along ``direction`` (degrees from north: 90 runs west to east)."""
    per_object = "per_object"
    """Each polygon of the event changes all at once, on its own date within the window."""


class EventType(StrEnum):
    drainage = "drainage"
    reclamation = "reclamation"
    pier = "pier"
    construction = "construction"
    new_tank = "new_tank"
    coal_cover = "coal_cover"
    coal_removed = "coal_removed"
    """Coal stockpiles cleared from a yard (down to its paved pad unless ``to`` says)."""
    demolition = "demolition"
    storage = "storage"
    equipment = "equipment"
    vessel_visits = "vessel_visits"
    seasonal_ice = "seasonal_ice"


# What a land-cover event turns its pixels into when the scenario does not say.
DEFAULT_TARGET: dict[EventType, LandCover] = {
    EventType.drainage: LandCover.bare,
    EventType.reclamation: LandCover.paved,
    EventType.pier: LandCover.pier,
    EventType.construction: LandCover.roof,
    EventType.new_tank: LandCover.tank,
    EventType.coal_cover: LandCover.coal,
    EventType.coal_removed: LandCover.paved,
    EventType.demolition: LandCover.bare,
    EventType.storage: LandCover.containers,
    EventType.equipment: LandCover.roof,
}
ACTIVITY_EVENTS = (EventType.vessel_visits, EventType.seasonal_ice)


class Ships(Model):
    length_m: tuple[float, float] = (60.0, 180.0)
    beam_m: tuple[float, float] = (12.0, 30.0)
    along: tuple[float, float] = Field(
        default=(0.0, 1.0),
        description="Range of a ship's position along its berth: 0 at one end, 1 at the "
        "other, 0.5 centred. Berths end to end with [0.5, 0.5] and ships a little shorter "
        "than a berth moor bow to stern at a set gap (the berth's length less the ship's).",
    )

    @field_validator("along")
    @classmethod
    def _along(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1] <= 1:
            raise ValueError(f"must be [low, high] with 0 <= low <= high <= 1, got {list(v)}")
        return v


def _check_mmdd(v: str) -> str:
    try:
        dt.date(2001, *(int(x) for x in v.split("-")))  # a non-leap year: no 02-29
    except ValueError:
        raise ValueError(f"{v!r} is not a month-day (MM-DD) of the calendar") from None
    return v


class IceSeason(Model):
    """A winter ice season that repeats every year of the event's window."""

    freeze: str = Field(default="12-20", pattern=r"^\d{2}-\d{2}$", description="MM-DD ice appears")
    peak: str = Field(default="01-25", pattern=r"^\d{2}-\d{2}$", description="MM-DD most ice")
    thaw: str = Field(default="03-05", pattern=r"^\d{2}-\d{2}$", description="MM-DD ice gone")
    peak_fraction: float = Field(default=0.6, gt=0, le=1)

    @field_validator("freeze", "peak", "thaw")
    @classmethod
    def _day(cls, v: str) -> str:
        return _check_mmdd(v)


class Event(Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: EventType
    title: str = ""
    brief: int | None = Field(default=None, description="Row of the brief's table it renders.")
    facility: str | None = None
    start: dt.date
    end: dt.date
    polygons: list[list[LonLat]] = Field(default_factory=list)
    circle: tuple[float, float, float] | None = Field(
        default=None, description="[lon, lat, diameter_m] for round objects (tanks)."
    )
    progress: Progress = Progress.linear
    direction: float = Field(default=90.0, description="Sweep direction, degrees from north.")
    via: LandCover | None = Field(
        default=None,
        description="Class the ground takes at `start` (e.g. bare for a cleared site).",
    )
    to: LandCover | None = None
    # activity events
    rate: float = Field(default=0.5, ge=0, le=1, description="Share of berths occupied at a scene.")
    berths: list[int] | None = Field(
        default=None, description="Indices of the facility's berths used (all if omitted)."
    )
    ships: Ships = Ships()
    ice: IceSeason = IceSeason()

    @model_validator(mode="after")
    def _check(self) -> Event:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if not self.polygons and self.circle is None and self.type != EventType.vessel_visits:
            raise ValueError("needs `polygons` or `circle`")
        for i, p in enumerate(self.polygons):
            ring(p, f"polygons[{i}]")
        if self.type in ACTIVITY_EVENTS:
            if self.to is not None or self.via is not None:
                raise ValueError(f"`to`/`via` do not apply to {self.type.value} events")
        elif self.target in (LandCover.ice, LandCover.ship):
            raise ValueError(f"`to` cannot be {self.target.value}")
        elif self.via in (LandCover.ice, LandCover.ship):
            raise ValueError(f"`via` cannot be {self.via.value}")
        if self.type == EventType.vessel_visits and self.facility is None:
            raise ValueError("vessel_visits needs `facility` (ships moor at its berths)")
        return self

    @property
    def target(self) -> LandCover | None:
        if self.type in ACTIVITY_EVENTS:
            return None
        return self.to or DEFAULT_TARGET[self.type]
