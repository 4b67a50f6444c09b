"""Monitoring: which complete units a catalog has new scenes for, by comparing the
scene ids the catalog has with those the units' records list (docs/run.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from shapely.geometry import box

from nampo.errors import StoreError
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store
from nampo.products.variables import LAST_CLEAR_MONTHS
from nampo.run.units import BaselineUnit, Unit, add_months, month_end, months
from nampo.sites import Site, Tile

__all__ = ["Staleness", "find_stale", "touches", "window"]


@dataclass(frozen=True)
class Staleness:
    new_scenes: dict[str, list[str]]
    """Unit id -> ids of the scenes of its month and tile its record does not list."""
    recompute: frozenset[str]
    """Complete units to compute again: the stale ones and the months after each that
    may compare with them."""
    baseline_stale: tuple[str, ...]
    """Tiles whose baseline period has new scenes. Monitoring does not recompute a baseline
    (every month of the store is measured against it): a forced backfill does."""


def touches(scene: NormalisedItem, site: Site, tile: Tile) -> bool:
    """Whether the scene's footprint bounds meet the tile (True when the item has none)."""
    if scene.bbox is None:
        return True
    return box(*scene.bbox).intersects(site.tile_footprint_lonlat(tile))


def _listed(record: dict) -> set[str]:
    return set(record.get("scenes", ())) | set(record.get("skipped_scenes", {}))


def _in(scene: NormalisedItem, first: dt.date, last: dt.date) -> bool:
    return first <= scene.datetime.date() <= month_end(last)


def find_stale(
    site: Site, store: Store, scenes: Iterable[NormalisedItem], first: dt.date, last: dt.date
) -> Staleness:
    """Compare the catalog's `scenes` with the records of the complete units of
    `first`..`last` (month units) and of the baselines."""
    scenes = list(scenes)
    done = store.done()
    new: dict[str, list[str]] = {}
    stale_units: list[Unit] = []
    for tile in site.tiles:
        for m in months(first, last):
            unit = Unit(m, tile.id)
            if unit.id not in done:
                continue  # a plain run computes it anyway
            seen = _listed(store.record(unit.id))
            fresh = [s.id for s in scenes if _in(s, m, m) and touches(s, site, tile)]
            if missing := sorted(set(fresh) - seen):
                new[unit.id] = missing
                stale_units.append(unit)
    recompute = set(new)
    for stale in stale_units:
        for n in range(1, LAST_CLEAR_MONTHS + 1):
            later = Unit(add_months(stale.month, n), stale.tile_id)
            if later.id in done and later.month <= last:
                recompute.add(later.id)
    stale_base = []
    assert site.baseline is not None  # a site's store has a baseline
    b_first, b_last = site.baseline
    for tile in site.tiles:
        try:
            seen = _listed(store.record(BaselineUnit(tile.id).id))
        except StoreError:
            continue
        fresh_base = {s.id for s in scenes if _in(s, b_first, b_last) and touches(s, site, tile)}
        if fresh_base - seen:
            stale_base.append(tile.id)
    return Staleness(new, frozenset(recompute), tuple(stale_base))


def window(through: dt.date, lookback_months: int) -> tuple[dt.date, dt.date]:
    """First and last month a monitoring run looks at: `lookback_months` months ending
    with the month of `through`."""
    last = through.replace(day=1)
    return add_months(last, 1 - lookback_months), last
