"""Where a datatake's items lie on the site: the window of each MGRS tile's item at 10,
20 and 60 m (on the tile's own pixel lattice), its valid-data mask, and the block
resampling between the fine grid, the site grid and the coarser bands' grids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from nampo.grid import Grid
from nampo.scenario.model import MgrsTile
from nampo.scenario.schedule import tile_bounds

__all__ = [
    "ItemWindow",
    "block_mean",
    "crop",
    "item_windows",
    "majority",
    "valid_mask",
    "zoom2",
]


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape[0] // k, a.shape[1] // k
    return a[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3), dtype="f4")


def majority(cls: np.ndarray, k: int, strict_fill: int | None = None) -> np.ndarray:
    """The class covering most of each k x k block. Ties are broken by a fixed per-pixel
    pseudo-random priority of the classes, so that no class wins every tie (ascending code
    order would always favour water over ships and ice). With `strict_fill`, a class must
    cover more than half of the block, else the block gets `strict_fill`."""
    h, w = cls.shape[0] // k, cls.shape[1] // k
    blocks = cls.reshape(h, k, w, k)
    best = np.zeros((h, w), cls.dtype)
    best_key = np.full((h, w), -1.0, "f4")
    pixel = (np.arange(h)[:, None] * 7919 + np.arange(w)[None, :] * 104729).astype("u4")
    for code in np.unique(cls):
        n = (blocks == code).sum(axis=(1, 3), dtype="i2")
        # Count first, then a priority in [0, 1) that differs by class and pixel.
        tie = ((pixel * 2654435761 + int(code) * 40503) % 65521).astype("f4") / 65521
        key = n + tie
        take = (n > 0) & (key > best_key)
        best[take], best_key[take] = code, key[take]
    if strict_fill is not None:
        best[best_key < k * k / 2 + 1] = strict_fill
    return best


def zoom2(a: np.ndarray) -> np.ndarray:
    return ndimage.zoom(a, 2, order=1, grid_mode=True, mode="nearest").astype("f4")


def _window(lo: float, hi: float, origin: float, res: float) -> tuple[float, float]:
    """Snap [lo, hi] inwards to the lattice of step `res` through `origin`."""
    return (
        origin + math.ceil((lo - origin) / res) * res,
        origin + math.floor((hi - origin) / res) * res,
    )


@dataclass(frozen=True)
class ItemWindow:
    """The part of the site one tile's item covers, at one resolution."""

    res: int
    x0: float
    y0: float  # north edge
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0, self.x0, 0, -self.res, self.y0)

    def offset_in(self, grid: Grid) -> tuple[int, int]:
        """(row, col) of this window's corner in `grid` (same lattice)."""
        return (
            round((grid.y0 - self.y0) / grid.resolution),
            round((self.x0 - grid.x0) / grid.resolution),
        )


def item_windows(site: Grid, tile: MgrsTile) -> dict[int, ItemWindow] | None:
    txmin, tymin, txmax, tymax = tile_bounds(tile)
    sxmin, symin, sxmax, symax = site.bounds
    lo_x, hi_x = max(txmin, sxmin), min(txmax, sxmax)
    lo_y, hi_y = max(tymin, symin), min(tymax, symax)
    if hi_x - lo_x < 60 or hi_y - lo_y < 60:
        return None
    out = {}
    for res in (10, 20, 60):
        x0, x1 = _window(lo_x, hi_x, tile.x_origin, res)
        y_lo, y_hi = _window(lo_y, hi_y, tile.y_origin, res)
        out[res] = ItemWindow(res, x0, y_hi, round((x1 - x0) / res), round((y_hi - y_lo) / res))
    return out


def valid_mask(win: ItemWindow, coverage: BaseGeometry) -> np.ndarray:
    return features.rasterize(
        [(coverage, 1)], out_shape=(win.height, win.width), transform=win.transform, dtype="uint8"
    ).astype(bool)


def crop(a: np.ndarray, win: ItemWindow, grid: Grid) -> np.ndarray:
    """The part of `a` (on `grid`) that `win` covers."""
    r, c = win.offset_in(grid)
    return a[r : r + win.height, c : c + win.width]
