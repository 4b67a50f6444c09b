"""The ground of one datatake on the fine grid: the land cover of its day, with the ice of
the seasonal-ice events and the ships moored at the berths, and each pixel's texture and
share of its class's alternate end-member.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio import features

from nampo.scenario import spectra as sp
from nampo.scenario.layout import Layout, day_number, ship_polygon
from nampo.scenario.model import EventType, LandCover, Scenario
from nampo.scenario.schedule import Datatake

__all__ = ["Ground", "ground", "ice_fraction"]

WATER, ICE, SHIP = LandCover.water.code, LandCover.ice.code, LandCover.ship.code
VEGETATION = LandCover.vegetation.code


@dataclass(frozen=True)
class Ground:
    """The ground a datatake sees, on the fine grid."""

    cls: np.ndarray
    """Class codes (with ice and ships)."""
    row: np.ndarray
    """Row of the day's spectral tables of each pixel: its class code, but the row of its
    water type for water and of its group of fields for vegetation (``spectra.ROW_*``)."""
    mult: np.ndarray
    """Texture multiplier of each pixel's reflectance (float32)."""
    share: np.ndarray
    """Share of each pixel's alternate end-member (float32, 0-1)."""
    vessels: list[dict]
    """The ships drawn: one row of ``truth/vessels.csv`` each."""
    ice_share: float
    """Share of the ice events' open water that is frozen (NaN without ice events)."""


def _mmdd(s: str, year: int) -> dt.date:
    m, d = (int(x) for x in s.split("-"))
    return dt.date(year, m, min(d, 28 if m == 2 else d))


def ice_fraction(ev, date: dt.date, seed: int) -> float:
    """Share of the event's water frozen on a date: a ramp up to the winter's peak, then down."""
    if not ev.start <= date <= ev.end:
        return 0.0
    season = ev.ice
    for winter_start_year in (date.year - 1, date.year):
        freeze = _mmdd(season.freeze, winter_start_year)
        # peak and thaw fall in the next calendar year when they come before the freeze date
        peak = _mmdd(season.peak, winter_start_year + (season.peak < season.freeze))
        thaw = _mmdd(season.thaw, winter_start_year + (season.thaw < season.freeze))
        if freeze <= date <= thaw:
            strength = np.random.default_rng([seed, 4, winter_start_year]).uniform(0.6, 1.2)
            peak_frac = min(1.0, season.peak_fraction * strength)
            if date <= peak:
                f = (date - freeze).days / max(1, (peak - freeze).days)
            else:
                f = (thaw - date).days / max(1, (thaw - peak).days)
            return float(np.clip(f, 0, 1) * peak_frac)
    return 0.0


def ground(
    sc: Scenario,
    lay: Layout,
    ice_masks: dict[str, np.ndarray],
    freeze_rank: dict[str, np.ndarray],
    take: Datatake,
    rng: np.random.Generator,
) -> Ground:
    """The ground of `take` (`ice_masks` and `freeze_rank`: those of ``render.prepare``)."""
    cls = lay.classes_at(day_number(take.date))
    ice_share = math.nan
    regions = np.zeros(cls.shape, bool)
    for ev in sc.events:
        if ev.type != EventType.seasonal_ice:
            continue
        f = ice_fraction(ev, take.date, sc.seed)
        region = ice_masks[ev.id] & (cls == WATER)
        regions |= region
        if f > 0:
            cls[region & (freeze_rank[ev.id] < f + rng.normal(0, 0.02))] = ICE
    if regions.any():
        # Share of the ice events' open water that is frozen (all ice events together).
        ice_share = float((cls[regions] == ICE).mean())

    vessels, ships = [], []
    for ev in sc.events:
        if ev.type != EventType.vessel_visits or not ev.start <= take.date <= ev.end:
            continue
        assert ev.facility is not None  # vessel_visits have one (the model checks)
        berths = lay.berths[ev.facility]
        for bi in ev.berths if ev.berths is not None else range(len(berths)):
            if rng.uniform() >= ev.rate:
                continue
            length = rng.uniform(*ev.ships.length_m)
            beam = rng.uniform(*ev.ships.beam_m)
            hull = ship_polygon(berths[bi], length, beam, rng.uniform(*ev.ships.along))
            if not _floats(hull, cls, lay):
                continue  # a berth over land (a pier not yet built): no ship that day
            ships.append(hull)
            lon, lat = lay.grid.to_lonlat(hull.centroid).coords[0]
            vessels.append(
                {
                    "datatake": take.id,
                    "date": take.date.isoformat(),
                    "facility": ev.facility,
                    "berth": bi,
                    "event": ev.id,
                    "length_m": round(length, 1),
                    "beam_m": round(beam, 1),
                    "lon": round(lon, 6),
                    "lat": round(lat, 6),
                }
            )
    if ships:
        hulls = features.rasterize(
            [(s, 1) for s in ships],
            out_shape=lay.fine.shape,
            transform=lay.fine.transform,
            dtype="uint8",
        ).astype(bool)
        # Ships float: they only cover water (or ice broken by their passage).
        cls[hulls & ((cls == WATER) | (cls == ICE))] = SHIP

    amp = sp.texture_table()[cls]
    # Each parcel (stretch of water) its own brightness, then the pixel texture.
    between = parcel_table()[cls] * np.where(cls == WATER, lay.plume, lay.parcel)
    mult = np.exp(between) * (1 + amp * lay.texture)
    _, base, spread = sp.alternate_tables()
    # Sparser and denser fields: each parcel its own share of bare soil, and so on.
    share = base[cls] + spread[cls] * lay.mix_field + sp.PARCEL_SHARE * spread[cls] * lay.parcel_mix
    share = np.clip(share, 0, 1)
    row = cls.copy()
    water = cls == WATER
    row[water] = sp.ROW_WATER + lay.water_type[water]
    veg = cls == VEGETATION
    row[veg] = sp.ROW_VEGETATION + lay.vegetation_group[veg]
    return Ground(cls, row, mult.astype("f4"), share.astype("f4"), vessels, ice_share)


def parcel_table() -> np.ndarray:
    """Between-parcel brightness amplitude (``spectra.PARCEL``) by class code."""
    out = np.zeros(sp.N_CLASSES, "f4")
    for cover, amp in sp.PARCEL.items():
        out[cover.code] = amp
    return out


def _floats(hull, cls: np.ndarray, lay: Layout) -> bool:
    """Whether at least 80 % of a ship's hull lies on water or ice on the fine grid."""
    # Rasterize in the hull's own window of the fine grid, not over the whole site.
    fine = lay.fine
    xmin, ymin, xmax, ymax = hull.bounds
    c0 = max(0, math.floor((xmin - fine.x0) / fine.resolution))
    c1 = min(fine.width, math.ceil((xmax - fine.x0) / fine.resolution))
    r0 = max(0, math.floor((fine.y0 - ymax) / fine.resolution))
    r1 = min(fine.height, math.ceil((fine.y0 - ymin) / fine.resolution))
    if c1 <= c0 or r1 <= r0:
        return False
    inside = features.rasterize(
        [(hull, 1)],
        out_shape=(r1 - r0, c1 - c0),
        transform=fine.transform @ Affine.translation(c0, r0),
        dtype="uint8",
        all_touched=False,
    ).astype(bool)
    under = cls[r0:r1, c0:c1][inside]
    return under.size > 0 and ((under == WATER) | (under == ICE)).mean() >= 0.8
