"""Units of work: (tile, month) pairs on a site's fixed grid and a fixed monthly calendar.

A unit's id is deterministic (``x01y02/2017-05``), like odc-stats' tasks. Each unit maps to
exactly one set of Zarr chunks (one tile, one month) and one completion record, so units
can run in any order, on any number of workers, any number of times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nampo.sites import Site, Tile


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, 1)


def month_end(d: dt.date) -> dt.date:
    """Last day of the month of `d`."""
    return add_months(month_start(d), 1) - dt.timedelta(days=1)


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of every month from `first`'s month to `last`'s month, inclusive."""
    if last < first:
        raise ValueError(f"period ends ({last}) before it starts ({first})")
    out, m = [], month_start(first)
    while m <= last:
        out.append(m)
        m = add_months(m, 1)
    return out


def parse_month(text: str) -> dt.date:
    """'2017-05' (or a full date) -> 2017-05-01."""
    try:
        if len(text) == 7:
            return dt.date.fromisoformat(text + "-01")
        return month_start(dt.date.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)") from None


@dataclass(frozen=True, order=True)
class Unit:
    """One tile and one month."""

    month: dt.date
    tile_id: str

    @property
    def id(self) -> str:
        return f"{self.tile_id}/{self.month:%Y-%m}"

    @classmethod
    def from_id(cls, unit_id: str) -> Unit:
        tile_id, month = unit_id.split("/")
        return cls(parse_month(month), tile_id)


def plan(site: Site, first: dt.date, last: dt.date, tiles: list[Tile] | None = None) -> list[Unit]:
    """Every unit of a period, in time order then tile order."""
    tiles = tiles if tiles is not None else list(site.tiles)
    return [Unit(m, t.id) for m in months(first, last) for t in tiles]
