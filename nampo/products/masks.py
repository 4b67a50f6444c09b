"""Which pixels are clear: a raw cube's mask band read as Sentinel-2 Scene Classification
codes (SCL itself, Landsat QA_PIXEL bits, or no mask at all)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from nampo.io.cube import FILL

__all__ = [
    "DEFAULT_MASK_CLASSES",
    "MASK_BAND",
    "QA_PIXEL_CLASSES",
    "UNMASKED",
    "band_positions",
    "clear_kernel",
    "mask_codes",
]

MASK_BAND = "scl"
"""The Sentinel-2 L2A mask band (Scene Classification), whose codes every mask is read as."""
DEFAULT_MASK_CLASSES = (0, 1, 3, 8, 9, 10)
"""SCL classes made NaN by :func:`~nampo.products.reflectance.to_reflectance`: no data,
saturated or defective, cloud shadow, cloud medium and high probability, thin cirrus.
Class 2 (dark area: coal looks like this) and 11 (snow and ice: winter harbour ice is a
signal) are kept."""

UNMASKED = 7
"""SCL code ("unclassified") of a pixel with data in a cube without a mask band."""

QA_PIXEL_CLASSES: tuple[tuple[int, int], ...] = (
    (7, 6),  # water -> SCL water
    (5, 11),  # snow -> snow and ice
    (1, 8),  # dilated cloud -> cloud, medium probability
    (2, 10),  # cirrus (high confidence) -> thin cirrus
    (4, 3),  # cloud shadow -> cloud shadow
    (3, 9),  # cloud (high confidence) -> cloud, high probability
    (0, 0),  # fill -> no data
)
"""Landsat Collection 2 ``QA_PIXEL`` bits (bit, SCL code), later rows winning: a pixel
with none of them set is clear (:data:`UNMASKED`). Bits from the USGS Landsat 8-9 C2 L2
product guide (0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
7 water)."""


def mask_codes(raw: xr.DataArray, mask_band: str | None) -> np.ndarray | da.Array:
    """(time, 1, y, x) uint16 SCL codes of a raw cube's mask band (see
    :func:`~nampo.products.reflectance.to_reflectance`); lazy when the cube is."""
    if mask_band == MASK_BAND:
        return raw.isel(band=band_positions(raw, [MASK_BAND])).data
    if mask_band == "qa_pixel":
        qa = raw.isel(band=band_positions(raw, ["qa_pixel"])).data
        return _map(_qa_kernel, qa)
    first = raw.isel(band=slice(0, 1)).data
    return _map(_no_mask_kernel, first)


def _map(
    fn: Callable[[np.ndarray], np.ndarray], data: np.ndarray | da.Array
) -> np.ndarray | da.Array:
    if isinstance(data, da.Array):
        return da.map_blocks(fn, data, dtype=np.uint16, meta=np.array((), dtype=np.uint16))
    return fn(np.asarray(data))


def _qa_kernel(qa: np.ndarray) -> np.ndarray:
    out = np.full(qa.shape, UNMASKED, dtype=np.uint16)
    for bit, code in QA_PIXEL_CLASSES:
        out[(qa >> bit) & 1 == 1] = code
    out[qa == FILL] = 0  # outside the file (the cube's fill)
    return out


def _no_mask_kernel(first: np.ndarray) -> np.ndarray:
    return np.where(first == FILL, 0, UNMASKED).astype(np.uint16)


def band_positions(raw: xr.DataArray, names: Sequence[str]) -> slice | list[int]:
    """Where `names` are in the cube's bands: a slice when they are consecutive, so that
    a numpy-backed cube is viewed, not copied (a tile's year of DNs is tens of MB)."""
    bands = [str(b) for b in raw["band"].values]
    where = [bands.index(n) for n in names]
    if where == list(range(where[0], where[0] + len(where))):
        return slice(where[0], where[0] + len(where))
    return where


def clear_kernel(scl: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Bool of `scl`'s shape: has data (not :data:`~nampo.io.cube.FILL`) and its code is
    not in `classes`."""
    # A lookup table indexed by the DN: one pass over the pixels (np.isin sorts and
    # searches). SCL DNs are small classes, but any uint16 DN has an entry.
    clear = np.ones(2**16 if scl.dtype.itemsize > 1 else 2**8, dtype=bool)
    clear[FILL] = False
    clear[classes.astype(np.intp)] = False
    return clear[scl]
