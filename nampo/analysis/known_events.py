"""Which dated events are new: an event keeps the id of a stored event when it is the
same change (``docs/sites.md``, alerts):

- the same change type,
- their outlines overlap by at least :data:`MIN_OVERLAP` of the smaller one, and
- their windows (last clear month before to first clear month after) overlap, give or
  take :data:`WINDOW_SLACK_DAYS`: a change dated again with one more month of data moves
  its window by a month or so, but stays the same change.

Pairs are matched greedily, largest overlap first, each stored event at most once. An
event that matches none is new and gets the next free id (``E`` and a number after the
highest stored one), so ids never move from one change to another.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from nampo.analysis.events import Event

__all__ = ["MIN_OVERLAP", "WINDOW_SLACK_DAYS", "carry_ids"]

MIN_OVERLAP = 0.3
"""Share of the smaller outline two outlines must share to be the same change: an object
re-dated with more data gains or loses edge pixels (a third of a small object's pixels
are edge pixels), but a third of it stays."""
WINDOW_SLACK_DAYS = 31
"""A month: re-dated with one more month, a window may move by one month."""

_ID = re.compile(r"^E(\d+)$")


def _date(v: Any) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])


def _windows_meet(a: Event, b: Mapping[str, Any]) -> bool:
    slack = dt.timedelta(days=WINDOW_SLACK_DAYS)
    b0, b1 = _date(b["window_start"]), _date(b["window_end"])
    return a.window_start <= b1 + slack and b0 <= a.window_end + slack


def _overlap(a, b) -> float:
    """Shared area over the smaller area (lon/lat degrees² cancel in the ratio)."""
    smaller = min(a.area, b.area)
    return a.intersection(b).area / smaller if smaller > 0 else 0.0


def carry_ids(
    found: Sequence[Event], known: Sequence[Mapping[str, Any]]
) -> tuple[list[Event], list[Event]]:
    """(every found event, with a stored event's id when it is the same change or a new
    id otherwise; the new ones). `known`: stored events (properties and a shapely
    ``geometry``, as :func:`nampo.analysis.events.stored_events` gives them)."""
    pairs = []
    for i, e in enumerate(found):
        for j, k in enumerate(known):
            if e.type != k["type"] or not _windows_meet(e, k):
                continue
            share = _overlap(e.geometry, k["geometry"])
            if share >= MIN_OVERLAP:
                pairs.append((share, i, j))
    ids: dict[int, str] = {}
    taken: set[int] = set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in ids and j not in taken:
            ids[i] = str(known[j]["id"])
            taken.add(j)
    numbers = [int(m.group(1)) for k in known if (m := _ID.match(str(k["id"])))]
    following = max(numbers, default=0) + 1
    out, new = [], []
    for i, e in enumerate(found):
        if i in ids:
            out.append(replace(e, id=ids[i]))
        else:
            event = replace(e, id=f"E{following:03d}")
            following += 1
            out.append(event)
            new.append(event)
    return out, new
