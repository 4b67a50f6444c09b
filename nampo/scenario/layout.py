"""The scenario's ground, drawn once on a fine grid: base land cover, when each pixel of
each event changes, berths, and the static fields the renderer reuses for every scene.

Geometry is drawn at half the site's resolution (5 m for a 10 m grid) so that edges of
buildings, piers and ships fall inside pixels as they do in reality (mixed pixels), and
objects smaller than a pixel (a crane) only change a pixel's value by their share of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from rasterio import features
from scipy import ndimage
from shapely.affinity import rotate
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from nampo.grid import Grid
from nampo.scenario.model import (
    ACTIVITY_EVENTS,
    Area,
    Event,
    EventType,
    LandCover,
    Mixture,
    Progress,
    Scenario,
)
from nampo.scenario.spectra import VEGETATION_GROUPS, WATER_TYPES

SUPERSAMPLE = 2
EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 (the integer time axis of the renderer's rasters)."""
    return (d - EPOCH).days


def event_geometry(event: Event, grid: Grid) -> BaseGeometry:
    """An event's geometry in the grid's CRS (union of its polygons, or its circle)."""
    from shapely.ops import unary_union

    parts = [grid.from_lonlat(Polygon(p)) for p in event.polygons]
    if event.circle is not None:
        lon, lat, diameter = event.circle
        parts.append(grid.from_lonlat(Point(lon, lat)).buffer(diameter / 2, quad_segs=16))
    return unary_union(parts)


def area_geometry(area: Area, grid: Grid) -> BaseGeometry:
    if area.circle is not None:
        lon, lat, diameter = area.circle
        return grid.from_lonlat(Point(lon, lat)).buffer(diameter / 2, quad_segs=16)
    return grid.from_lonlat(Polygon(area.polygon))


@dataclass
class EventRaster:
    """Where and when one land-cover event changes pixels of the fine grid."""

    event: Event
    rows: slice
    cols: slice
    mask: np.ndarray  # bool, inside the event's geometry (within rows/cols)
    day_to: np.ndarray  # int32, day each masked pixel takes the target class
    start_day: int
    end_day: int
    target: LandCover
    via: LandCover | None


@dataclass
class Layout:
    scenario: Scenario
    grid: Grid  # the site grid (10 m)
    fine: Grid  # the drawing grid (5 m)
    base: np.ndarray  # uint8 class codes on the fine grid
    events: list[EventRaster]
    texture: np.ndarray  # float32 standard-normal field, static ground texture
    mix_field: np.ndarray  # float32 standard-normal field: share of each class's alternate
    freeze_key: np.ndarray  # float32: where it is low, water freezes first
    berths: dict[str, list[Polygon]]  # facility -> berth polygons (grid CRS)
    facilities: dict[str, Polygon]  # facility -> outline (grid CRS)
    water_type: np.ndarray  # uint8: index in spectra.WATER_TYPES of the water of each pixel
    parcel: np.ndarray  # float32 standard normal, one value per parcel (field, roof, yard)
    parcel_mix: np.ndarray  # float32 standard normal per parcel: its share of the alternate
    vegetation_group: np.ndarray  # uint8: the group of fields (phenology) of each pixel
    group_phenology: np.ndarray  # float32 (groups, 2): days late, peak greenness
    plume: np.ndarray  # float32 standard-normal field of sediment plumes over water

    def classes_at(self, day: int) -> np.ndarray:
        """The ground's class codes on the fine grid on a given day (no ice, no ships)."""
        cls = self.base.copy()
        for ev in self.events:
            if day < ev.start_day:
                continue
            window = cls[ev.rows, ev.cols]
            if ev.via is not None:
                window[ev.mask] = ev.via.code
            window[ev.mask & (ev.day_to <= day)] = ev.target.code
        return cls


def _rasterize(geom: BaseGeometry, grid: Grid) -> np.ndarray:
    return features.rasterize(
        [(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
    ).astype(bool)


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    z = ndimage.gaussian_filter(rng.standard_normal(shape).astype("f4"), sigma)
    return (z - z.mean()) / (z.std() + 1e-9)


def _paint_mixture(
    cls: np.ndarray, inside: np.ndarray, mix: Mixture, fine: Grid, rng: np.random.Generator
) -> None:
    # Square patches of about `grain` metres, each of one class drawn by the shares: the
    # block pattern of town quarters and yards, with edges that need not follow pixels.
    cell = max(1, round(mix.grain_m / fine.resolution))
    ny, nx = -(-cls.shape[0] // cell), -(-cls.shape[1] // cell)
    codes = np.array([c.code for c in mix.classes], "u1")
    weights = np.array(list(mix.classes.values()), "f8")
    blocks = rng.choice(codes, size=(ny, nx), p=weights / weights.sum())
    offset = rng.integers(0, cell, size=2)
    rows = ((np.arange(cls.shape[0]) + offset[0]) // cell).clip(0, ny - 1)
    cols = ((np.arange(cls.shape[1]) + offset[1]) // cell).clip(0, nx - 1)
    pattern = blocks[rows[:, None], cols[None, :]]
    cls[inside] = pattern[inside]


def _progress_days(
    ev: Event,
    mask: np.ndarray,
    parts: list[np.ndarray],
    start: int,
    end: int,
    rng: np.random.Generator,
    resolution: float,
) -> np.ndarray:
    """Day each pixel of the mask changes, by the event's progress rule."""
    days = np.full(mask.shape, end, "i4")
    n = int(mask.sum())
    if n == 0 or ev.progress == Progress.step or end == start:
        return days
    span = end - start
    if ev.progress == Progress.per_object:
        # Each object is finished on its own date; the last one on the end date.
        fractions = np.sort(rng.uniform(0.3, 1.0, size=len(parts)))
        fractions[-1] = 1.0
        for part, f in zip(parts, rng.permutation(fractions), strict=True):
            days[part & mask] = start + round(f * span)
        return days
    if ev.progress == Progress.sweep:
        rad = np.deg2rad(ev.direction)
        r, c = np.nonzero(mask)
        # x grows east with columns, y grows north against rows.
        order_key = c * np.sin(rad) - r * np.cos(rad)
    elif ev.progress == Progress.edge_inward:
        # Pad: the mask is cropped to its bounding box, whose border is also the outline.
        dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        order_key = dist[mask]
    else:  # linear: a spatially coherent random order (patches, not salt and pepper)
        field = _smooth_noise(rng, mask.shape, sigma=max(1.0, 30 / resolution))
        order_key = field[mask]
    ranks = np.argsort(np.argsort(order_key, kind="stable"), kind="stable")
    days[mask] = start + np.round((ranks + 1) / n * span).astype("i4")
    return days


def build_layout(scenario: Scenario) -> Layout:
    """Draw the scenario's static ground on the fine grid (deterministic for its seed)."""
    grid = scenario.site_grid
    fine = grid.refine(SUPERSAMPLE)
    rng = np.random.default_rng([scenario.seed, 1])

    base = np.full(fine.shape, scenario.landcover.default.code, "u1")
    for area in scenario.landcover.areas:
        inside = _rasterize(area_geometry(area, grid), fine)
        if isinstance(area.cover, Mixture):
            _paint_mixture(base, inside, area.cover, fine, rng)
        else:
            base[inside] = area.cover.code

    events: list[EventRaster] = []
    for ev in scenario.events:
        if ev.type in ACTIVITY_EVENTS:
            continue
        geom = event_geometry(ev, grid)
        full = _rasterize(geom, fine)
        r, c = np.nonzero(full)
        if r.size == 0:  # smaller than a fine pixel: draw it at its centre pixel
            col, row = ~fine.transform @ (geom.centroid.x, geom.centroid.y)
            r, c = np.array([int(row)]), np.array([int(col)])
            full[r, c] = True
        rows = slice(int(r.min()), int(r.max()) + 1)
        cols = slice(int(c.min()), int(c.max()) + 1)
        mask = full[rows, cols]
        parts = []
        for p in ev.polygons:
            part = _rasterize(grid.from_lonlat(Polygon(p)), fine)
            parts.append(part[rows, cols])
        if not parts:
            parts = [mask]
        start, end = day_number(ev.start), day_number(ev.end)
        days = _progress_days(ev, mask, parts, start, end, rng, fine.resolution)
        assert ev.target is not None  # a land-cover event (activity events are skipped)
        events.append(EventRaster(ev, rows, cols, mask, days, start, end, ev.target, ev.via))

    texture = (
        0.8 * _smooth_noise(rng, fine.shape, 0.7) + 0.6 * _smooth_noise(rng, fine.shape, 12.0)
    ).astype("f4")

    # Ice forms first along shores and in sheltered water, then spreads in floes.
    water = base == LandCover.water.code
    shore_dist = ndimage.distance_transform_edt(water) * fine.resolution
    floes = _smooth_noise(rng, fine.shape, 25.0)
    mix_field = 0.6 * _smooth_noise(rng, fine.shape, 1.5) + 0.8 * _smooth_noise(
        rng, fine.shape, 8.0
    )
    mix_field = (mix_field / mix_field.std()).astype("f4")
    freeze_key = (np.tanh(shore_dist / 600.0) + 0.35 * floes).astype("f4")

    berths = {f.name: [grid.from_lonlat(Polygon(b)) for b in f.berths] for f in scenario.facilities}
    facilities = {f.name: grid.from_lonlat(Polygon(f.polygon)) for f in scenario.facilities}
    # Drawn after everything above, so that the earlier fields keep their draws.
    water_type = _water_types(scenario, grid, fine)
    cell_id, n_cells = _parcels(rng, fine.shape, PARCEL_M / fine.resolution)
    parcel = rng.standard_normal(n_cells).astype("f4")[cell_id]
    parcel_mix = rng.standard_normal(n_cells).astype("f4")[cell_id]
    vegetation_group = rng.integers(0, VEGETATION_GROUPS, n_cells).astype("u1")[cell_id]
    group_phenology = np.stack(
        [rng.normal(0, 9, VEGETATION_GROUPS), rng.uniform(0.9, 1.0, VEGETATION_GROUPS)], axis=1
    ).astype("f4")
    plume = _smooth_noise(rng, fine.shape, PLUME_M / fine.resolution).astype("f4")
    return Layout(
        scenario, grid, fine, base, events, texture, mix_field, freeze_key, berths, facilities,
        water_type, parcel, parcel_mix, vegetation_group, group_phenology, plume,
    )  # fmt: skip


PARCEL_M = 90.0
"""Typical size of a parcel: a field, a block of roofs, a yard (Voronoi cells)."""
PLUME_M = 150.0
"""Scale of sediment plumes and streaks on the water surface (Gaussian sigma)."""


def _parcels(rng: np.random.Generator, shape: tuple[int, int], cell_px: float):
    """(cell id of each pixel, number of cells): Voronoi cells around random seeds, about
    one per `cell_px` x `cell_px` pixels: parcels with straight, slanted borders."""
    n = max(1, round(shape[0] * shape[1] / cell_px**2))
    seeds = np.zeros(shape, bool)
    rows = rng.integers(0, shape[0], n)
    cols = rng.integers(0, shape[1], n)
    seeds[rows, cols] = True
    ids = np.zeros(shape, "i4")
    ids[rows, cols] = np.arange(n)
    _, (ri, ci) = ndimage.distance_transform_edt(~seeds, return_indices=True)
    return ids[ri, ci], n


def _water_types(scenario: Scenario, grid: Grid, fine: Grid) -> np.ndarray:
    """Index in ``WATER_TYPES`` of the water each pixel would hold: the landcover's
    default, and each water area's own type over it, painted in order."""
    out = np.full(fine.shape, WATER_TYPES.index(scenario.landcover.water), "u1")
    for area in scenario.landcover.areas:
        if area.water is not None:
            out[_rasterize(area_geometry(area, grid), fine)] = WATER_TYPES.index(area.water)
    return out


def ship_polygon(berth: Polygon, length: float, beam: float, along: float) -> Polygon:
    """A ship of `length` x `beam` lying along the berth's long axis, `along` in [0, 1]
    giving its position along the berth."""
    rect = berth.minimum_rotated_rectangle
    xs, ys = rect.exterior.coords.xy
    edges = [(xs[i + 1] - xs[i], ys[i + 1] - ys[i]) for i in range(2)]
    lengths = [float(np.hypot(*e)) for e in edges]
    long_i = int(np.argmax(lengths))
    ex, ey = edges[long_i]
    angle = float(np.degrees(np.arctan2(ey, ex)))
    berth_len, berth_wide = lengths[long_i], lengths[1 - long_i]
    length = min(length, berth_len * 0.95)
    beam = min(beam, berth_wide * 0.95)
    c = rect.centroid
    shift = (along - 0.5) * (berth_len - length)
    hull = Polygon(
        [
            (-length / 2, -beam / 2),
            (length / 2, -beam / 2),
            (length / 2, beam / 2),
            (-length / 2, beam / 2),
        ]
    )
    hull = rotate(hull, angle, origin=(0, 0))
    ux, uy = ex / lengths[long_i], ey / lengths[long_i]
    from shapely.affinity import translate

    return translate(hull, c.x + shift * ux, c.y + shift * uy)


__all__ = [
    "Layout",
    "EventRaster",
    "build_layout",
    "day_number",
    "ship_polygon",
    "event_geometry",
    "EventType",
]
