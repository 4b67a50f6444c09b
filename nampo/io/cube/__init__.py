"""Lazy data cubes of raw digital numbers on a site's grid: the one seam in front of the
loaders (stackstac, odc-stac), and the only package that imports them.

:func:`load_cube` gives a lazy ``(time, band, y, x)`` uint16 cube, ``0`` where there is no
data, exactly on the requested grid (pixel centres ``grid.xy_coords()``, a CF
``spatial_ref``), ``time`` sorted, one step per scene, the same whichever loader reads.
:func:`read_cube` gives the same cube read into memory. Scenes that cannot be read are
left out and reported (:func:`skipped_scenes`). Design and measurements: docs/cube.md.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from nampo.errors import CubeError, CubeWarning
from nampo.grid import Grid
from nampo.io.cube.items import loader_item
from nampo.io.cube.layout import CUBE_DIMS, FILL, string_coord, wrap
from nampo.io.cube.odc import load_odc
from nampo.io.cube.preflight import CheckLevel, check_assets, is_remote, overlaps
from nampo.io.cube.reading import PREFETCH_MB, READ_THREADS, Loader, Reading, Signer
from nampo.io.cube.stackstac_reader import OPEN_FILES, READ_ERRORS_AS_NODATA, load_stackstac
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import NormalisedItem

__all__ = [
    "CUBE_DIMS",
    "FILL",
    "OPEN_FILES",
    "READ_ERRORS_AS_NODATA",
    "PREFETCH_MB",
    "READ_THREADS",
    "CheckLevel",
    "Loader",
    "Reading",
    "Signer",
    "check_assets",
    "load_cube",
    "loader_item",
    "read_cube",
    "skipped_scenes",
    "string_coord",
]


def load_cube(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: Sequence[str],
    *,
    loader: Loader = "stackstac",
    chunk_px: int = 256,
    gdal: GdalSettings = GdalSettings(),  # noqa: B008 (frozen)
    check: CheckLevel = "header",
) -> xr.DataArray:
    """A lazy ``(time, band, y, x)`` uint16 cube of raw DNs of `scenes` on `grid`.

    Parameters
    ----------
    scenes
        Normalised items (any catalog, any CRS); sorted by time here. Scenes with no
        asset on the grid are left out; scenes that cannot be read are left out and
        reported (see :func:`skipped_scenes`).
    grid
        The output grid: CRS, resolution, bounds and pixel centres are exactly these.
    bands
        Internal band names (``red``, ``nir``, ``scl``...), in the order wanted.
    loader
        ``stackstac`` or ``odc`` (odc-stac): same grid, coordinates, dtype and values.
    chunk_px
        Chunk size in y and x, counted from the grid's upper-left corner. Use the site's
        tile size so that chunks are tiles.
    gdal
        GDAL settings, shipped with the graph to the tasks that read.
    check
        Pre-flight level of :func:`check_assets` (``header``, ``read`` or ``off``).

    Returns
    -------
    xarray.DataArray
        Named ``dn``; coordinates ``time``, ``band``, ``y``, ``x``, ``id``, ``tile``,
        ``platform`` and ``spatial_ref``; attrs ``crs``, ``nodata`` (0), ``loader`` and
        ``skipped`` (JSON, read it with :func:`skipped_scenes`).

    Examples
    --------
    >>> cube = load_cube(scenes, site.grid, ["red", "nir", "scl"])       # doctest: +SKIP
    >>> cube.dims, cube.dtype, skipped_scenes(cube)                      # doctest: +SKIP
    (('time', 'band', 'y', 'x'), dtype('uint16'), {})
    """
    bands, on_grid = _prepare(scenes, grid, bands, loader, chunk_px, check)
    skipped = check_assets(on_grid, grid, bands, gdal=gdal, level=check)
    _warn_skipped(skipped, len(on_grid))
    usable = [s for s in on_grid if s.id not in skipped]
    return _cube(usable, grid, bands, loader, (1, chunk_px), gdal, skipped, tolerant=True)


def read_cube(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: Sequence[str],
    *,
    loader: Loader = "stackstac",
    gdal: GdalSettings = GdalSettings(),  # noqa: B008 (frozen)
    check: CheckLevel = "header",
    read_threads: int | None = None,
    sign: Signer | None = None,
    prefetch: Grid | None = None,
    remote_threads: int = READ_THREADS,
    prefetch_mb: int = PREFETCH_MB,
) -> xr.DataArray:
    """The cube of :func:`load_cube`, read into memory here (in the calling thread, or,
    for remote assets, on `read_threads` threads).

    For a task that needs a whole small cube at once (one site tile): every asset is
    opened and read once, by one Dask task per band (local files) or per scene and band
    (remote files, read `read_threads` at a time so that their waits overlap), instead
    of being opened first by the pre-flight and again by the loader. The
    pre-flight of :func:`check_assets` runs only when that read fails: the scenes it
    finds unreadable are then left out and reported, and the others read again, with
    the errors of :data:`READ_ERRORS_AS_NODATA` as nodata, exactly as :func:`load_cube`
    does. Same values, coordinates, attrs and skipped scenes as
    ``load_cube(...).compute()`` (a read that succeeds has nothing for the pre-flight to
    find: a missing, truncated, multi-band or unreferenced file fails the read too).
    Remote assets are read through in that pre-flight (level ``header`` reads their
    windows too): a transfer that keeps failing after GDAL's retries leaves its scene
    out, named, rather than turning into nodata.

    Parameters are those of :func:`load_cube`, and

    read_threads
        How many assets are read at once (None: 1 when every asset is a local file, else
        `remote_threads`).
    sign
        The catalog's signing hook (``CatalogProfile.sign_scene``: Planetary Computer's
        hrefs carry a token that expires), called here, right before the read; when the
        read is refused with HTTP 403 (a token that expired meanwhile), the scenes are
        signed again and the read tried once more.
    prefetch
        A larger grid holding `grid` (the site's, when `grid` is one of its tiles): when
        the assets are remote and the blocks of all of them under `prefetch` fit in
        `prefetch_mb`, each file's blocks under it are read when the file is opened
        (the worker keeps it open for the site's other tiles, whose windows then come
        from GDAL's block cache instead of a request each). stackstac loader only.
    remote_threads
        Assets read at once when some are remote and `read_threads` is None
        (:data:`READ_THREADS` by default; ``NAMPO_READ_THREADS`` for a run).
    prefetch_mb
        Budget, in MiB of decoded blocks, of the read-ahead under `prefetch`
        (:data:`PREFETCH_MB` by default; 0: no read-ahead). GDAL's block cache is raised by
        as much while the cube is read.

    The result is numpy-backed.

    Examples
    --------
    >>> cube = read_cube(scenes, site.tile_grid(tile), ["red", "scl"])   # doctest: +SKIP
    >>> type(cube.data), skipped_scenes(cube)                            # doctest: +SKIP
    (<class 'numpy.ndarray'>, {})
    """
    bands, unsigned = _prepare(scenes, grid, bands, loader, grid.height, check)
    on_grid = [sign(s) for s in unsigned] if sign is not None else unsigned
    if remote_threads < 1:
        raise CubeError(f"remote_threads must be >= 1, not {remote_threads}")
    if prefetch_mb < 0:
        raise CubeError(f"prefetch_mb must be >= 0 (0: no read-ahead), not {prefetch_mb}")
    threads = (
        read_threads if read_threads is not None else _read_threads(on_grid, bands, remote_threads)
    )
    if threads < 1:
        raise CubeError(f"read_threads must be >= 1, not {threads}")
    # One chunk per asset when several threads read, else one per band (fewer tasks).
    chunks = (1 if threads > 1 else max(1, len(on_grid)), max(grid.height, grid.width))

    ahead, gdal = _read_ahead(prefetch, on_grid, grid, bands, loader, threads, gdal, prefetch_mb)

    def compute(cube: xr.DataArray) -> xr.DataArray:
        if threads == 1:
            return cube.compute(scheduler="synchronous")
        return cube.compute(scheduler="threads", num_workers=threads)

    if check != "off":
        # Only the item-level part of the pre-flight (no I/O): assets missing from items.
        missing = check_assets(on_grid, grid, bands, gdal=gdal, level="off")
        for attempt in (1, 2):
            readable = [s for s in on_grid if s.id not in missing]
            try:
                cube = compute(
                    _cube(
                        readable,
                        grid,
                        bands,
                        loader,
                        chunks,
                        gdal,
                        missing,
                        tolerant=False,
                        prefetch=ahead,
                    )  # fmt: skip
                )
            except Exception as exc:  # noqa: BLE001 - any failure: the pre-flight tells which
                if sign is not None and attempt == 1 and _refused(exc):
                    on_grid = [sign(s) for s in unsigned]  # a token expired: sign again, once
                    continue
                break
            else:
                _warn_skipped(missing, len(on_grid))
                return cube
    skipped = check_assets(on_grid, grid, bands, gdal=gdal, level=check, read_remote=True)
    _warn_skipped(skipped, len(on_grid))
    usable = [s for s in on_grid if s.id not in skipped]
    return compute(
        _cube(usable, grid, bands, loader, chunks, gdal, skipped, tolerant=True, prefetch=ahead)
    )


def _read_ahead(
    prefetch: Grid | None,
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: Sequence[str],
    loader: str,
    threads: int,
    gdal: GdalSettings,
    budget_mb: int,
) -> tuple[tuple[float, float, float, float] | None, GdalSettings]:
    """The bounds to read ahead (None: read window by window) and the GDAL settings with
    a block cache that holds what is read ahead."""
    if prefetch is None or loader != "stackstac" or threads == 1 or prefetch == grid:
        return None, gdal
    if budget_mb == 0:
        return None, gdal
    px = prefetch.width * prefetch.height
    decoded = 0.0
    for scene in scenes:
        for name in bands:
            band = scene.bands.get(name)
            if band is None:
                continue
            # A file pixel of k x k grid pixels holds 1/k^2 of them; blocks at the edges
            # and the file's data type (at most 2 bytes here) are rounded up by 1.5.
            k = abs(band.transform[0]) / prefetch.resolution if band.transform else 1.0
            decoded += 1.5 * 2 * px / max(k, 1.0) ** 2
    if decoded > budget_mb * 2**20:
        return None, gdal  # more than the cache holds: each tile's windows, as they come
    # The cache outside the read-ahead, plus the read-ahead's budget.
    cache = gdal.cache_max_mb + budget_mb
    return prefetch.bounds, dataclasses.replace(gdal, cache_max_mb=cache)


def _refused(exc: BaseException) -> bool:
    """Whether a read failed on HTTP 403 (an expired or missing signature)."""
    seen: BaseException | None = exc
    while seen is not None:
        if "HTTP response code: 403" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _read_threads(scenes: Sequence[NormalisedItem], bands: Sequence[str], remote: int) -> int:
    """1 when every asset is a local file (reading is decoding: the worker's one core is
    busy already), else `remote` (reading is mostly waiting)."""
    hrefs = (s.bands[b].href for s in scenes for b in bands if b in s.bands)
    return remote if any(is_remote(h) for h in hrefs) else 1


def _prepare(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: Sequence[str],
    loader: str,
    chunk_px: int,
    check: str,
) -> tuple[list[str], list[NormalisedItem]]:
    """Checked arguments: the bands as a list and the scenes on the grid, sorted by time."""
    bands = list(bands)
    if not bands:
        raise CubeError("no bands requested")
    if len(set(bands)) != len(bands):
        raise CubeError(f"bands requested twice: {bands}")
    if loader not in ("stackstac", "odc"):
        raise CubeError(f"unknown loader {loader!r}; valid: 'stackstac', 'odc'")
    if not isinstance(chunk_px, int) or chunk_px < 1:
        raise CubeError(f"chunk_px must be a positive integer, not {chunk_px!r}")
    if check not in ("off", "header", "read"):
        raise CubeError(f"unknown check level {check!r}; valid: 'off', 'header', 'read'")
    ids = [s.id for s in scenes]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise CubeError(f"scenes given twice: {twice} (deduplicate with nampo.io.scenes.dedupe)")
    ordered = sorted(scenes, key=lambda s: (s.datetime, s.id))
    return bands, [s for s in ordered if overlaps(s, grid, bands)]


def _warn_skipped(skipped: Mapping[str, str], total: int) -> None:
    if skipped:
        warnings.warn(
            CubeWarning(
                f"{len(skipped)} of {total} scenes left out of the cube: "
                + "; ".join(f"{k} ({v})" for k, v in sorted(skipped.items()))
            ),
            stacklevel=3,
        )


def _cube(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    loader: str,
    chunks: tuple[int, int],
    gdal: GdalSettings,
    skipped: Mapping[str, str],
    *,
    tolerant: bool,
    prefetch: tuple[float, float, float, float] | None = None,
) -> xr.DataArray:
    """The lazy cube of `scenes`, chunked (`chunks[0]` scenes, 1 band, `chunks[1]` px
    square). `tolerant`: the read errors of :data:`READ_ERRORS_AS_NODATA` (stackstac) or
    any rasterio error (odc-stac) become nodata; otherwise every error raises."""
    time_chunk, chunk_px = chunks
    if not scenes:
        data = da.zeros(
            (0, len(bands), grid.height, grid.width),
            dtype=np.uint16,
            chunks=(1, 1, chunk_px, chunk_px),
        )
    elif loader == "stackstac":
        data = load_stackstac(scenes, grid, bands, chunks, gdal, tolerant, prefetch)
    else:
        data = load_odc(scenes, grid, bands, chunks, gdal, tolerant)
    return wrap(data, scenes, grid, bands, loader=loader, skipped=skipped)


def skipped_scenes(cube: xr.DataArray | xr.Dataset) -> dict[str, str]:
    """``{scene id: reason}`` of the scenes :func:`load_cube` left out as unreadable."""
    text = cube.attrs.get("skipped")
    return dict(json.loads(text)) if text else {}
