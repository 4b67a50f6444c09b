"""Duplicate acquisitions: versions of one scene published twice, reduced to the newest
(docs/catalog.md, "Duplicate acquisitions")."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry import shape

from nampo.errors import CatalogError
from nampo.io.scenes.bands import baseline_tuple, processing_baseline
from nampo.io.scenes.normalisation import acquired, platform, tile

__all__ = ["SAME_FOOTPRINT", "SAME_TIME", "dedupe", "sequence", "version_key"]

SAME_TIME = timedelta(seconds=1)
"""Two items of one tile sensed less than this apart may be one acquisition."""
SAME_FOOTPRINT = 0.9
"""...and are when their footprints overlap by at least this (intersection / union)."""

_ES_SEQUENCE = re.compile(r"^S2[A-D]_\w{5}_\d{8}_(\d+)_L2A$")


def sequence(item: Mapping[str, Any]) -> int:
    """Earth Search's sequence number (``s2:sequence``, or the ``_0_`` of
    ``S2A_13TDE_20231008_0_L2A``); 0 when the item has none."""
    props = item.get("properties") or {}
    if props.get("s2:sequence") is not None:
        return int(props["s2:sequence"])
    match = _ES_SEQUENCE.match(str(item.get("id", "")))
    return int(match.group(1)) if match else 0


def version_key(item: Mapping[str, Any]) -> tuple:
    """Sort key: the larger, the newer version of an acquisition (see :func:`dedupe`)."""
    props = item.get("properties") or {}
    baseline = processing_baseline(item)
    produced = props.get("s2:generation_time") or props.get("landsat:product_generated") or ""
    published = props.get("updated") or props.get("created") or ""
    return (
        baseline_tuple(baseline) if baseline else (-1, -1),
        _instant(produced),
        sequence(item),
        _instant(published),
        str(item.get("id", "")),
    )


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def dedupe(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`items` with each acquisition once, in the order of first appearance.

    Two items are versions of one acquisition when either

    1. they have the same ``id`` (an item returned on two pages, or re-indexed), or
    2. they have the same collection, platform and tile (MGRS tile or WRS-2 path/row),
       their sensing times differ by less than :data:`SAME_TIME` (1 s), and their
       footprints overlap by at least :data:`SAME_FOOTPRINT` (90 % intersection over
       union; the footprint test is skipped when either item has no geometry). This
       catches Earth Search's ``S2A_13TDE_20231008_0_L2A`` / ``..._1_L2A`` pairs when the
       second is a re-publication (a newer processing baseline, a re-run), and Landsat's
       tier changes (``_RT`` becoming ``_T1``).

    Of the versions the newest is kept, by :func:`version_key`: highest processing
    baseline, then latest production time (``s2:generation_time``,
    ``landsat:product_generated``), then highest Earth Search sequence number, then latest
    ``updated`` (else ``created``), then the largest id.

    Items of one tile and day that are *not* the same acquisition (a datatake split into
    two datastrips, each with part of the pixels) are kept: their footprints differ
    (docs/catalog.md, "Duplicate acquisitions").

    >>> a = {"id": "x", "properties": {"updated": "2023-01-01T00:00:00Z"}}
    >>> b = {"id": "x", "properties": {"updated": "2024-01-01T00:00:00Z"}}
    >>> [i["properties"]["updated"][:4] for i in dedupe([a, b])]
    ['2024']
    """
    by_id: dict[str, dict[str, Any]] = {}
    for item in items:
        key = str(item.get("id", ""))
        if key not in by_id or version_key(item) > version_key(by_id[key]):
            by_id[key] = dict(item)
    unique = list(by_id.values())

    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(unique):
        where = tile(item)
        if where is None:
            continue
        try:
            who = platform(item)
        except CatalogError:
            continue
        groups.setdefault((item.get("collection"), who, where), []).append(index)

    dropped: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: _time_or_min(unique[i]))
        for pos, i in enumerate(members):
            if i in dropped:
                continue
            for j in members[pos + 1 :]:
                if j in dropped:
                    continue
                if _time_or_min(unique[j]) - _time_or_min(unique[i]) >= SAME_TIME:
                    break
                if not _same_footprint(unique[i], unique[j]):
                    continue
                older = i if version_key(unique[i]) < version_key(unique[j]) else j
                dropped.add(older)
                if older == i:
                    break
    return [item for index, item in enumerate(unique) if index not in dropped]


def _time_or_min(item: Mapping[str, Any]) -> datetime:
    try:
        return acquired(item)
    except CatalogError:
        return datetime.min.replace(tzinfo=UTC)


def _same_footprint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if not a.get("geometry") or not b.get("geometry"):
        return True
    try:
        ga = shapely.make_valid(shape(a["geometry"]))
        gb = shapely.make_valid(shape(b["geometry"]))
        union = ga.union(gb).area
    except (ValueError, TypeError, shapely.errors.GEOSException):
        return False
    if union == 0:
        return ga.equals(gb)
    return ga.intersection(gb).area / union >= SAME_FOOTPRINT
