"""Ships one by one: a group of ship-like berth pixels split into the ships it holds, by its
brightness profile along and across the berth (``docs/change.md``, "Activity").

Ships moored side by side or bow to stern 15-25 m apart make one group of bright pixels:
Sentinel-2's 10 m pixels and its blur (about half a pixel) leave the pixels between them
partly bright, and the grouping bridges a pixel's gap on purpose (a slanted hull crosses
the pixel lattice with gaps). What still tells them apart is shape: a ship is a bright
ridge 15-40 m wide and 100-250 m long lying along its berth, so the water between two
ships is a dip in the brightness profile across the berth (side by side) or along it (bow
to stern). A pixel on a hull's centre line is at least three quarters hull (a beam of at
least 15 m covers 10 m wherever it falls); a pixel centred in a gap of 15 m or more reaches
at most 7 m from its centre (a corner, at a slant), so it holds at most a corner of either
hull, and the blur brings it up to a third at most: a dip under half the lower of the two
peaks beside it is water between two ships.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from nampo.analysis.activity.params import ActivityParams

__all__ = ["axis_of", "berth_axis", "split_ships"]

STEP_M = 2.5
"""Spacing of the samples a profile is read at: a quarter pixel. The group's brightness is
read between pixel centres (bilinear), so that a hull lying at a slant across the pixel
lattice gives the same profile as one along it: read at the pixels alone, a slab of the
profile may hold only the pixels at a hull's edge, a dip that is not water."""


def berth_axis(rect_coords) -> float:
    """Angle (radians, from the grid's x axis towards +y) of the long axis of a berth, from
    the corners of its minimum rotated rectangle in the grid's CRS (x east, y north)."""
    (x0, y0), (x1, y1), (x2, y2) = rect_coords[:3]
    a, b = (x1 - x0, y1 - y0), (x2 - x1, y2 - y1)
    long = a if np.hypot(*a) >= np.hypot(*b) else b
    return float(np.arctan2(long[1], long[0]))


def axis_of(angles: np.ndarray) -> float:
    """The mean direction of axes (angles modulo pi): the doubled angles' mean."""
    return float(np.arctan2(np.sin(2 * angles).mean(), np.cos(2 * angles).mean()) / 2)


def _cuts(prof: np.ndarray, dip: float, min_part: float, max_part: float) -> list[int]:
    """Where to cut a profile sampled every ``STEP_M`` (indices of the samples a cut falls
    on): the deepest sample under `dip` times the lower of the highest samples either
    side, recursively, so that each part is at least `min_part` long; a part longer than
    `max_part` (longer than a ship) is cut at its deepest sample even without such a dip."""
    length = (prof.size - 1) * STEP_M
    if length < 2 * min_part:
        return []
    edge = int(np.ceil(min_part / STEP_M))
    best, best_ratio = -1, np.inf
    for i in range(edge, prof.size - edge):
        if np.isnan(prof[i]):
            continue  # nothing seen there: no evidence of water between two ships
        peak = min(np.nanmax(prof[: i + 1]), np.nanmax(prof[i:]))
        ratio = prof[i] / peak if peak > 0 else np.inf
        if ratio < best_ratio:
            best, best_ratio = i, ratio
    # The ships' length where they are at least half as bright as at their brightest (a
    # blurred hull's ends are half bright): pixels partly on a hull reach beyond it.
    lit = np.flatnonzero(prof >= 0.5 * np.nanmax(prof))
    lit_length = (lit[-1] - lit[0]) * STEP_M if lit.size else 0.0
    if best < 0 or (best_ratio >= dip and lit_length <= max_part):
        return []
    left = _cuts(prof[: best + 1], dip, min_part, max_part)
    right = _cuts(prof[best:], dip, min_part, max_part)
    return [*left, best, *(best + r for r in right)]


def _nanmax(samples: np.ndarray) -> np.ndarray:
    """Each row's largest sample, NaN where a row has none."""
    out = np.full(samples.shape[0], np.nan)
    some = ~np.isnan(samples).all(axis=1)
    out[some] = np.nanmax(samples[some], axis=1)
    return out


def split_ships(
    rows: np.ndarray,
    cols: np.ndarray,
    image: np.ndarray,
    axis: float,
    params: ActivityParams = ActivityParams(),  # noqa: B008 (frozen)
    resolution: float = 10.0,
) -> list[np.ndarray]:
    """The ships in one group of ship-like pixels: a list of index arrays into
    `rows`/`cols`, one per ship.

    Parameters
    ----------
    rows, cols : the group's ship-like pixels, as indices into `image`.
    image : NIR above the open water of the berths (at least 0), NaN outside the clear
        berth pixels (a pier or quay beside a ship is not read as ship).
    axis : direction of the berth's long axis (:func:`berth_axis`, radians, x east, y
        north: the direction ships lie in).

    Examples
    --------
    >>> image = np.zeros((5, 32))
    >>> image[1:4, 1:14] = image[1:4, 16:30] = 0.13  # two ships, 20 m of water between
    >>> rows, cols = np.nonzero(image)
    >>> image[0] = np.nan  # the quay
    >>> [len(s) for s in split_ships(rows, cols, image, 0.0)]
    [39, 42]
    """
    seen = np.isfinite(image).astype("f4")
    filled = np.nan_to_num(image, nan=0.0).astype("f4")
    cos, sin = np.cos(axis), np.sin(axis)
    x, y = cols * resolution, -rows * resolution
    along, across = x * cos + y * sin, -x * sin + y * cos
    parts = [np.arange(rows.size)]
    # Side by side first (a profile across the berth: the water between two ships runs
    # their whole length), then each side's ships bow to stern (a profile along it).
    for on_along, min_part, max_part in (
        (False, resolution, np.inf),
        (True, params.ship_min_length_m / 2, params.ship_max_length_m),
    ):
        out = []
        for idx in parts:
            t, s = (along, across) if on_along else (across, along)
            # the part's extent, to the outer edges of its pixels
            tt = np.arange(t[idx].min() - resolution / 2, t[idx].max() + resolution / 2, STEP_M)
            ss = np.arange(s[idx].min() - resolution / 2, s[idx].max() + resolution / 2, STEP_M)
            T, S = np.meshgrid(tt, ss, indexing="ij")
            a, c = (T, S) if on_along else (S, T)  # (along, across) of each sample
            X, Y = a * cos - c * sin, a * sin + c * cos
            at = [-Y / resolution, X / resolution]
            # Normalised interpolation: the pixels that are not berth (NaN: a pier, a quay,
            # a cloud) neither count nor pull their neighbours' samples down; a sample
            # mostly among them is no evidence either way.
            weight = ndimage.map_coordinates(seen, at, order=1, cval=0.0)
            value = ndimage.map_coordinates(filled, at, order=1, cval=0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                samples = np.where(weight >= 0.5, value / weight, np.nan)
            prof = _nanmax(samples)
            cuts = [tt[i] for i in _cuts(prof, params.ship_dip, min_part, max_part)]
            side = np.searchsorted(np.array(cuts), t[idx])
            out += [idx[side == k] for k in range(len(cuts) + 1)]
        parts = out
    return [p for p in parts if p.size]
