"""The pre-flight: which scenes lie on the grid, and which of their assets can be read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal
from urllib.parse import urlparse

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from nampo.grid import Grid
from nampo.io.gdal import GdalSettings, open_remote_retried
from nampo.io.scenes import NormalisedItem

__all__ = ["CheckLevel", "check_assets", "is_remote", "overlaps"]

CheckLevel = Literal["off", "header", "read"]


def check_assets(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: Sequence[str],
    *,
    gdal: GdalSettings = GdalSettings(),  # noqa: B008 (frozen)
    level: CheckLevel = "header",
    max_workers: int = 8,
    read_remote: bool = False,
) -> dict[str, str]:
    """Scenes whose assets for `bands` cannot be read: ``{scene id: reason}``.

    Parameters
    ----------
    level
        ``header``: open every asset (one small request per file: catches missing files,
        HTTP 404/403, files that are not rasters, more than one band, no CRS), and for
        local files check that every TIFF block the grid needs lies inside the file
        (catches truncated downloads, whose header still opens). ``read``: also read and
        decode the grid's window of every asset (catches any corrupt block, at the cost
        of reading the data twice). ``off``: only check that the assets exist in the item.
    max_workers
        Threads opening files (the work is waiting on I/O).
    read_remote
        At level ``header``, also read the grid's window of remote assets (over HTTP a
        block that cannot be fetched after GDAL's retries is a transfer that keeps
        failing: its scene is left out and named instead of read as nodata).

    Examples
    --------
    >>> check_assets(scenes, site.grid, ["red", "scl"])        # doctest: +SKIP
    {'S2A_51SYC_20220305_0_L2A': 'red: block (0, 0) ends at byte 19905 of a 9000-byte file'}
    """
    problems: dict[str, list[str]] = {}
    jobs: list[tuple[str, str, str]] = []
    for scene in scenes:
        missing = [b for b in bands if b not in scene.bands]
        if missing:
            problems.setdefault(scene.id, []).append(f"no asset for band(s) {', '.join(missing)}")
            continue
        jobs.extend((scene.id, b, scene.bands[b].href) for b in bands)
    if level != "off" and jobs:
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            reasons = pool.map(
                lambda job: _check_asset(job[2], grid, gdal, _level(job[2], level, read_remote)),
                jobs,
            )
            for (scene_id, band, _), reason in zip(jobs, reasons, strict=True):
                if reason:
                    problems.setdefault(scene_id, []).append(f"{band}: {reason}")
    return {scene_id: "; ".join(reasons) for scene_id, reasons in problems.items()}


def _level(href: str, level: CheckLevel, read_remote: bool) -> CheckLevel:
    return "read" if level == "header" and read_remote and is_remote(href) else level


def _check_asset(href: str, grid: Grid, gdal: GdalSettings, level: CheckLevel) -> str | None:
    def open_() -> DatasetReader:
        with gdal.env("open"):
            return rasterio.open(href)

    try:
        with open_remote_retried(href, open_) as src, gdal.env("open"):
            if src.count != 1:
                return f"{href} has {src.count} bands; a band asset must have 1"
            if src.crs is None:
                return f"{href} has no CRS"
            window = _grid_window(src, grid)
            if window is None:
                return None  # nothing of it on the grid: nothing will be read
            size = _local_size(href)
            if size is not None:
                problem = _blocks_beyond(src, window, size)
                if problem:
                    return problem
            if level == "read":
                with gdal.env("read"):
                    src.read(1, window=window)
    except (RasterioError, OSError) as exc:
        return f"cannot read {href}: {exc}"
    return None


def _grid_window(src, grid: Grid) -> Window | None:
    """The window of `src` that covers the grid (None when they do not overlap)."""
    bounds = grid.bounds
    if src.crs.to_epsg() != grid.epsg:
        bounds = transform_bounds(f"EPSG:{grid.epsg}", src.crs, *bounds, densify_pts=21)
    window = from_bounds(*bounds, transform=src.transform)
    col0 = max(0, int(np.floor(window.col_off)))
    row0 = max(0, int(np.floor(window.row_off)))
    col1 = min(src.width, int(np.ceil(window.col_off + window.width)))
    row1 = min(src.height, int(np.ceil(window.row_off + window.height)))
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def is_remote(href: str) -> bool:
    """Whether `href` is read over a network (``http(s)://``, ``s3://``, ``/vsicurl/``...),
    not from a local file."""
    return urlparse(href).scheme not in ("", "file") or href.startswith(_NETWORK_VSI)


_NETWORK_VSI = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift")


def _local_size(href: str) -> int | None:
    parsed = urlparse(href)
    if parsed.scheme not in ("", "file") or href.startswith("/vsi"):
        return None
    try:
        return os.path.getsize(parsed.path if parsed.scheme == "file" else href)
    except OSError:
        return None


def _blocks_beyond(src, window: Window, size: int) -> str | None:
    """A message if a TIFF block of `window` lies past the end of the file (truncation)."""
    block_h, block_w = src.block_shapes[0]
    rows = range(window.row_off // block_h, (window.row_off + window.height - 1) // block_h + 1)
    cols = range(window.col_off // block_w, (window.col_off + window.width - 1) // block_w + 1)
    for row in rows:
        for col in cols:
            offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1)
            length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
            if offset is None or length is None:
                continue  # not a tiled/striped TIFF GDAL can describe, or a sparse block
            end = int(offset) + int(length)
            if end > size:
                return f"block ({col}, {row}) ends at byte {end} of a {size}-byte file"
    return None


def overlaps(scene: NormalisedItem, grid: Grid, bands: Sequence[str]) -> bool:
    """Whether any asset of `scene` for `bands` overlaps the grid (True when unknown)."""
    known = False
    for name in bands:
        band = scene.bands.get(name)
        if band is None or band.shape is None or band.transform is None:
            continue
        known = True
        a, _, c, _, e, f = band.transform
        rows, cols = band.shape
        xs = (c, c + a * cols)
        ys = (f, f + e * rows)
        box = (min(xs), min(ys), max(xs), max(ys))
        if scene.epsg != grid.epsg:
            box = transform_bounds(f"EPSG:{scene.epsg}", f"EPSG:{grid.epsg}", *box)
        gx0, gy0, gx1, gy1 = grid.bounds
        if box[0] < gx1 and box[2] > gx0 and box[1] < gy1 and box[3] > gy0:
            return True
    if known:
        return False
    if scene.bbox is not None:
        w, s, e, n = grid.bbox_lonlat()
        bw, bs, be, bn = scene.bbox
        return bw < e and be > w and bs < n and bn > s
    return True
