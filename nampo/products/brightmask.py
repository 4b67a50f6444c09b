"""Which observations are clear: the Scene Classification's mask, less the bright surfaces
it takes for cloud (white roofs and tanks flagged cloud scene after scene: a cloud moves,
a roof stays put). Why and how: docs/cube.md, "Bright surfaces under a cloud flag".
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy import ndimage

from nampo.products.composite import nanmedian_last
from nampo.products.masks import DEFAULT_MASK_CLASSES

__all__ = [
    "CLEAR_AROUND",
    "CLOUD",
    "MASKED",
    "MASKED_EXCEPT_CLOUD",
    "MIN_SCENES",
    "PERSISTENCE",
    "STABLE_BLUE",
    "WINDOW_PX",
    "bright_surface_observations",
    "clear",
]

MASKED = DEFAULT_MASK_CLASSES
"""SCL classes that make an observation not clear (the cube's default mask)."""
CLOUD = (8, 9)
"""SCL classes a bright surface gets (and that are taken back when persistent)."""
MASKED_EXCEPT_CLOUD = tuple(c for c in MASKED if c not in CLOUD)
"""The classes to mask when reading reflectance: cloud-flagged values are kept, so that
they can be taken back; :func:`clear` says which observations are clear."""
WINDOW_PX = 31
"""Side of the square neighbourhood, in pixels (310 m at 10 m)."""
CLEAR_AROUND = 0.5
"""Share of the neighbourhood that must be clear for a scene to count."""
MIN_SCENES = 2
"""Scenes with a clear neighbourhood in which a pixel must be flagged cloud."""
PERSISTENCE = 0.8
"""Share of those scenes in which a pixel must be flagged cloud."""
STABLE_BLUE = 0.25
"""Largest spread of the flagged observations' blue reflectance, relative to their median."""


def clear(scl: xr.DataArray, blue: xr.DataArray) -> xr.DataArray:
    """Clear observations (time, y, x): SCL not in :data:`MASKED`, or a cloud flag on a
    persistent bright surface in a scene whose neighbourhood is clear.

    Parameters
    ----------
    scl : (time, y, x) Scene Classification (0 = no data).
    blue : (time, y, x) blue reflectance, finite where the sensor has a value (cloud
        flags included).

    Examples
    --------
    >>> valid = clear(refl["scl"], refl["reflectance"].sel(band="blue"))  # doctest: +SKIP
    """
    codes = np.asarray(scl.values)
    out = bright_surface_observations(codes, np.asarray(blue.values, dtype=np.float32))
    out |= ~np.isin(codes, MASKED)
    return xr.DataArray(out, dims=scl.dims, coords=scl.coords, name="clear")


def bright_surface_observations(scl: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """(time, y, x) bool: cloud-flagged observations taken back as a bright surface.

    A pixel's cloud flags are taken back, for a stack of observations, when

    - in at least :data:`MIN_SCENES` scenes of the stack its neighbourhood (a square of
      :data:`WINDOW_PX` pixels) is mostly clear (:data:`CLEAR_AROUND`), and
    - it is flagged cloud in at least :data:`PERSISTENCE` of those scenes, and
    - its flagged observations in them agree: the spread of their blue reflectance is
      within :data:`STABLE_BLUE` of their median (clouds vary, paint does not).

    Only its flags in scenes whose neighbourhood is mostly clear are taken back: where the
    neighbourhood is cloudy, the flag may be a real cloud.
    """
    if scl.shape[0] == 0:
        return np.zeros(scl.shape, bool)
    plain = ~np.isin(scl, MASKED)
    flagged = np.isin(scl, CLOUD) & np.isfinite(blue)
    around = np.stack(
        [
            ndimage.uniform_filter(p.astype(np.float32), WINDOW_PX, mode="constant", cval=0.0)
            for p in plain
        ]
    )
    # mode="constant": outside the tile counts as not clear, so a tile edge never makes a
    # neighbourhood clearer than it is.
    seen = (around >= CLEAR_AROUND) & (scl != 0)
    candidate = flagged & seen
    n_seen = seen.sum(0)
    n_flagged = candidate.sum(0)
    persistent = (n_flagged >= MIN_SCENES) & (n_flagged >= PERSISTENCE * n_seen)
    if not persistent.any():
        return np.zeros(scl.shape, bool)
    values = np.where(candidate, blue, np.nan)
    # numpy's nanmedian goes pixel by pixel on short axes: the sort-based one, same values
    mid = nanmedian_last(np.moveaxis(blue, 0, -1), np.moveaxis(candidate, 0, -1))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels without a candidate
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
    stable = persistent & (spread <= STABLE_BLUE * mid)
    return candidate & stable[None]
