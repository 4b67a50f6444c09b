"""Moored ships are traffic, not ground: the months in which a ship lay on a berth pixel in
at least half of the month's clear scenes, read from the units' activity documents
(:func:`moored_months`), and the store's monthly classes with those months as gaps
(:func:`without_moored_ships`), which change dating reads (``docs/change.md``, "Change
dating", rule 1).

A month's composite is the median of its clear scenes (:mod:`nampo.products.composite`).
Where a ship lay in at least half of them, the median is the ship, or a mixture of ship and
water, and the month's class reads ``built`` on water. At a busy berth whole runs of months
do, and a run at either end of a series is a lasting "change" of the ground (issue 18:
``pier-mini``, a reclamation and a built -> water event of 2,900-3,500 m² at its berths,
ships at each berth in half the scenes). The product already reads every ship of every
clear scene at the berths (the units' ``objects``); a month in which ships covered a pixel
that often says nothing about the ground under them, as a month of ice says nothing about
the water.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from nampo.analysis.activity.params import ActivityParams

__all__ = ["MOORED_SHARE", "SHIP_MARGIN_PX", "moored_months", "without_moored_ships"]

MOORED_SHARE = 0.5
"""A pixel's month is a gap where ships lay on it in at least this share of the scenes in
which its berths were read: the median of its scenes is then the ship, or a mixture of
ship and water."""
SHIP_MARGIN_PX = 1
"""Pixels added around each ship's box: the instrument's blur (about half a pixel) spreads
a hull into its neighbours, and the berth pixels ships are read from leave out the
outline's pixels beside land."""


def moored_months(
    docs: Iterable[Mapping],
    time: np.ndarray,
    shape: tuple[int, int],
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
) -> np.ndarray:
    """(time, y, x) bool: per month of `time` and pixel of the site grid, whether ships
    lay on the pixel in at least :data:`MOORED_SHARE` of the month's scenes in which its
    berths were read.

    A unit reads a facility's berths in a scene when they are clear and away from cloud
    (``berth_clear``); the scenes counted are those in which at least
    ``params.min_clear_share`` of the unit's berth pixels of that facility were (the
    vessels' own rule for a scene to count), and a ship covers the pixels of its box
    grown by :data:`SHIP_MARGIN_PX`. Each (tile, month) unit is read on its own: its
    scenes and its ships' pieces are its own.

    Parameters
    ----------
    docs : the units' activity documents (:meth:`nampo.io.store.Store.activity`); months
        not in `time` are left out.
    time : the months of the series (datetime64).
    shape : the site grid's (rows, cols): the documents' boxes are on it.
    params : ``min_clear_share`` as above; objects of more than ``max_ship_px`` pixels are
        not ships (haze, a pier being built) and are left out.

    Examples
    --------
    >>> scene = lambda day, objects: {"date": f"2021-05-{day:02d}", "facilities": {
    ...     "pier": {"berth_clear": 20, "objects": objects}}}
    >>> doc = {"month": "2021-05", "facilities": {"pier": {"berth_px": 20}}, "scenes": [
    ...     scene(3, [[12, 2, 2, 3, 7]]), scene(8, [[12, 2, 2, 3, 7]]), scene(13, [])]}
    >>> m = moored_months([doc], np.array(["2021-05-01"], "datetime64[ns]"), (8, 10))
    >>> bool(m[0, 2, 5]), bool(m[0, 6, 5])
    (True, False)
    """
    index = {f"{t:%Y-%m}": i for i, t in enumerate(pd.DatetimeIndex(time))}
    out = np.zeros((len(index), *shape), bool)
    m = SHIP_MARGIN_PX
    for d in docs:
        i = index.get(d["month"])
        if i is None:
            continue
        for name, counts in d.get("facilities", {}).items():
            berth_px = counts.get("berth_px", 0)
            if not berth_px:
                continue
            read = [
                [o for o in s["facilities"][name].get("objects", ()) if o[0] <= params.max_ship_px]
                for s in d["scenes"]
                if name in s["facilities"]
                and s["facilities"][name].get("berth_clear", 0) >= params.min_clear_share * berth_px
            ]
            boxes = [o for objs in read for o in objs]
            if not boxes:
                continue
            r0 = max(min(o[1] for o in boxes) - m, 0)
            c0 = max(min(o[2] for o in boxes) - m, 0)
            r1 = min(max(o[3] for o in boxes) + m + 1, shape[0])
            c1 = min(max(o[4] for o in boxes) + m + 1, shape[1])
            n = np.zeros((r1 - r0, c1 - c0), "int16")
            for objs in read:
                seen = np.zeros(n.shape, bool)
                for _, a, b, c, e in objs:
                    rows = slice(max(a - m - r0, 0), c + m + 1 - r0)
                    seen[rows, max(b - m - c0, 0) : e + m + 1 - c0] = True
                n += seen
            out[i, r0:r1, c0:c1] |= n >= MOORED_SHARE * len(read)
    return out


def without_moored_ships(
    ds: xr.Dataset,
    docs: Iterable[Mapping],
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """`ds` (the store's months, ``landcover`` at least, on the whole site grid) with
    ``landcover`` 0 (no clear observation) in each month and pixel where ships lay in at
    least :data:`MOORED_SHARE` of the scenes in which its berths were read
    (:func:`moored_months`).

    Examples
    --------
    >>> ds = without_moored_ships(store.open(), store.activity())  # doctest: +SKIP
    """
    docs = list(docs)
    if not docs:
        return ds
    shape = (ds.sizes["y"], ds.sizes["x"])
    moored = moored_months(docs, ds["time"].values, shape, params)
    if not moored.any():
        return ds
    mask = xr.DataArray(moored, dims=("time", "y", "x"), coords={"time": ds["time"]})
    if ds["landcover"].chunks:
        mask = mask.chunk(dict(zip(ds["landcover"].dims, ds["landcover"].chunks, strict=True)))
    out = ds.copy()
    out["landcover"] = xr.where(mask, np.uint8(0), ds["landcover"]).astype("uint8")
    out["landcover"].attrs = ds["landcover"].attrs
    return out
