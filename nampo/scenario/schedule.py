"""When the constellation acquires the site: datatakes, platforms, sun angles, and which
MGRS tiles publish each datatake.

Sentinel-2 repeats its ground track every 10 days per satellite; with two satellites on
opposite sides of the orbit a site is seen every 5 days. Each datatake over the site is
published once per MGRS tile that intersects it, so a site near a tile edge gets two
items per acquisition (here 51SYC and 51SXC), each with only its part of the site.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon, box

from nampo.scenario.model import LAUNCHES, MgrsTile, Scenario

__all__ = [
    "ORBITS_PER_DAY",
    "Datatake",
    "sun_position",
    "datatakes",
    "tile_bounds",
    "swath_edge",
]

ORBITS_PER_DAY = 143 / 10  # 143 orbits per 10-day repeat cycle


@dataclass(frozen=True)
class Datatake:
    index: int
    platform: str
    datetime: dt.datetime
    relative_orbit: int
    absolute_orbit: int
    sun_azimuth: float
    sun_elevation: float

    @property
    def date(self) -> dt.date:
        return self.datetime.date()

    @property
    def id(self) -> str:
        return f"S{self.platform[-2:].upper()}_{self.datetime:%Y%m%dT%H%M%S}"


def sun_position(when: dt.datetime, lon: float, lat: float) -> tuple[float, float]:
    """(azimuth, elevation) of the sun in degrees (NOAA's low-precision formulas,
    good to a fraction of a degree, which is all cloud-shadow geometry needs)."""
    doy = when.timetuple().tm_yday
    hour = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_min = hour * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    az = math.degrees(
        math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    )
    return (az + 180) % 360, 90 - math.degrees(zen)


def datatakes(scenario: Scenario) -> list[Datatake]:
    """Every acquisition of the site in the scenario's period, in time order."""
    lon, lat = scenario.site_grid.footprint_lonlat().centroid.coords[0]
    acq = scenario.acquisitions
    rng = np.random.default_rng([scenario.seed, 2])
    found: list[tuple[dt.datetime, str]] = []
    for p in acq.platforms:
        day = p.first
        last = min(p.last or scenario.period.end, scenario.period.end)
        while day <= last:
            if day >= scenario.period.start:
                # Overpass time varies by a few seconds along the track; keep it realistic.
                t = dt.datetime.combine(day, acq.overpass_utc, tzinfo=dt.UTC)
                found.append((t + dt.timedelta(seconds=float(rng.uniform(-20, 20))), p.name))
            day += dt.timedelta(days=p.revisit_days)
    found.sort()
    out = []
    for i, (t, platform) in enumerate(found):
        az, el = sun_position(t, lon, lat)
        abs_orbit = int((t.date() - LAUNCHES[platform]).days * ORBITS_PER_DAY) + 1
        out.append(Datatake(i, platform, t, acq.relative_orbit, abs_orbit, az, el))
    return out


def tile_bounds(tile: MgrsTile) -> tuple[float, float, float, float]:
    return (tile.x_origin, tile.y_origin - tile.size, tile.x_origin + tile.size, tile.y_origin)


def swath_edge(scenario: Scenario, take: Datatake) -> Polygon | None:
    """The part of the site a datatake covers when its swath or datastrip edge cuts the
    site (about ``partial_coverage`` of datatakes), else None (full cover)."""
    rng = np.random.default_rng([scenario.seed, 3, take.index])
    if rng.uniform() >= scenario.acquisitions.partial_coverage:
        return None
    grid = scenario.site_grid
    xmin, ymin, xmax, ymax = grid.bounds
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    # The edge runs along the ground track; keep between 20 % and 80 % of the site.
    heading = math.radians(scenario.acquisitions.orbit_heading)
    along = np.array([math.sin(heading), math.cos(heading)])
    across = np.array([along[1], -along[0]])
    half = (xmax - xmin) / 2
    offset = rng.uniform(-0.6, 0.6) * half
    side = 1 if rng.uniform() < 0.5 else -1
    big = 4 * max(xmax - xmin, ymax - ymin)
    p0 = np.array([cx, cy]) + across * offset
    pts = [
        p0 - along * big,
        p0 + along * big,
        p0 + along * big + side * across * big,
        p0 - along * big + side * across * big,
    ]
    return Polygon(pts).intersection(box(*grid.bounds))
