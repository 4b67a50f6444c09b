"""Units of work: a tile's baseline, and (tile, month) pairs on a fixed monthly calendar.

Every unit has a deterministic id (``x01y02/2017-05``, ``x01y02/baseline``), built and
parsed here only, and maps to one set of Zarr chunks and one completion record.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "BASELINE_ID",
    "AnyUnit",
    "BaselineUnit",
    "Unit",
    "add_months",
    "month_end",
    "month_start",
    "months",
    "parse_month",
    "unit_from_id",
]

BASELINE_ID = "baseline"
"""What follows the tile in a baseline unit's id (``x01y02/baseline``)."""


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
    """A month unit: one tile and one month."""

    month: dt.date
    """First day of the unit's month."""
    tile_id: str
    """The tile (``x01y02``)."""

    kind: ClassVar[Literal["month"]] = "month"
    """What the unit computes: the month's composite, indices and change metrics."""

    @property
    def id(self) -> str:
        return f"{self.tile_id}/{self.month:%Y-%m}"

    @property
    def previous(self) -> Unit:
        """The same tile's unit of the month before."""
        return Unit(add_months(self.month, -1), self.tile_id)

    @classmethod
    def from_id(cls, unit_id: str) -> Unit:
        """The month unit of an id like ``x01y02/2017-05`` (a baseline's id is refused)."""
        unit = unit_from_id(unit_id)
        if not isinstance(unit, Unit):
            raise ValueError(f"{unit_id!r} is not a month unit's id")
        return unit


@dataclass(frozen=True, order=True)
class BaselineUnit:
    """A tile's baseline unit: the composites of the site's baseline period that every month
    of the tile is compared with."""

    tile_id: str
    """The tile (``x01y02``)."""

    kind: ClassVar[Literal["baseline"]] = "baseline"
    """What the unit computes: the baseline composite, peak NDVI and land cover."""

    @property
    def id(self) -> str:
        return f"{self.tile_id}/{BASELINE_ID}"


AnyUnit = Unit | BaselineUnit
"""Either kind of unit; ``unit.kind`` tells which."""


_UNIT_ID = re.compile(r"(x\d+y\d+)/(\d{4}-\d{2}|" + BASELINE_ID + ")")


def unit_from_id(unit_id: str) -> AnyUnit:
    """The unit of an id: ``x01y02/2017-05`` or ``x01y02/baseline``; ValueError for anything
    else. The one parser of unit ids (the store's records are named by them too)."""
    m = _UNIT_ID.fullmatch(unit_id)
    if m is None:
        raise ValueError(f"{unit_id!r} is not a unit id (like x01y02/2017-05 or x01y02/baseline)")
    tile_id, what = m.groups()
    if what == BASELINE_ID:
        return BaselineUnit(tile_id)
    return Unit(parse_month(what), tile_id)
