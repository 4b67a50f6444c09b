"""Lazy data cubes of raw digital numbers on a site's grid, and reflectance from them.

This is the only module that imports stackstac or odc-stac. Both sit behind one seam,
:func:`load_cube`, which gives the same cube whichever loader reads:

* dims ``(time, band, y, x)``, ``uint16`` raw DNs, ``0`` where there is no data;
* exactly the requested :class:`~nampo.grid.Grid`: its CRS, resolution, bounds and pixel
  centres (``x``/``y`` are ``grid.xy_coords()``, bit for bit), plus a CF ``spatial_ref``
  coordinate (CRS WKT and GeoTransform, which GDAL and rioxarray read);
* ``time`` sorted, one step per scene; per-time coordinates ``id``, ``tile`` and
  ``platform`` as fixed-width unicode (never object dtype, so ``to_zarr`` accepts them);
* Dask-backed, one chunk per (scene, band, ``chunk_px`` square from the grid's corner):
  chunk edges fall on site tile edges when ``chunk_px`` is the site's tile size.

:func:`read_cube` gives the same cube read into memory, for a task that needs one small
cube whole (a pipeline unit's tile): one read task per band, each asset opened once, the
pre-flight only when that read fails.

Reading speed
-------------
What a unit pays per (scene, band) on a 256 px tile, measured on the Nampo archive (local
DEFLATE COGs, 256 px blocks, page cache warm): opening the file about 0.7 ms, decoding the
2-4 blocks the tile window touches about 2 ms. stackstac adds a GDAL ``WarpedVRT`` per
asset (its reader warps unless the file *is* the output grid): creating it cost more than
the open and the warped read twice the plain one. :class:`AlignedReader`, passed to
stackstac as its ``reader``, reads files that lie on the grid's lattice (same CRS, whole
multiples of the grid's pixel, aligned: Sentinel-2 on a site grid) with a plain window
read, each pixel repeated; every other file goes through stackstac's own reader. Same
values bit for bit (``tests/test_cube.py``).

Resampling: nearest neighbour, for every band
---------------------------------------------
Sentinel-2's 20 m and 60 m lattices share the 10 m lattice's corners (the MGRS tile origin
is a multiple of 60 m), so each 10 m pixel centre lies inside exactly one 20 m pixel and
nearest neighbour is an exact 2x2 replication of the measured value. It keeps DNs as
measured (the cube is raw data: a bilinear DN is a value the sensor never gave, and mixes a
cloud's or a ship's edge into its neighbours), it never blends a valid DN with the 0 of a
scene edge, it is the only correct choice for SCL (a class, not a quantity), and it makes
both loaders agree bit for bit. Sharper 20 m bands are a modelling choice for later steps,
not something to bake into the raw cube. Scenes in another CRS than the grid are warped
with nearest neighbour too (GDAL's warper in both loaders).

Catalog differences the seam hides
----------------------------------
Loaders are fed items rebuilt from :class:`~nampo.io.scenes.NormalisedItem` (see
:func:`loader_item`): assets keyed by nampo's internal band names with the hrefs the
catalog gave (Earth Search ``red`` and Planetary Computer ``B04`` both become ``red``),
``proj:epsg`` on every asset (stackstac reads only that field; pystac 1.15 migrates items
to ``proj:code``), ``raster:bands`` data type and nodata from the normalised values (many
items carry none). Pixels are read unscaled (stackstac ``rescale=False``); scale and offset
are applied per scene by :func:`to_reflectance`, from the normalised item, so the 2022
processing-baseline offset is right even where the catalog does not state it.

Unreadable scenes
-----------------
Before a cube is built, :func:`check_assets` opens every asset the cube needs (see its
``level``) and the scenes that fail are left out and reported, not fatal:
``skipped_scenes(cube)`` gives ``{scene id: reason}`` for the caller to record. Errors
that still happen while the cube is computed (a block that cannot be fetched after GDAL's
retries) become nodata for the errors listed in :data:`READ_ERRORS_AS_NODATA` (stackstac's
``errors_as_nodata``; odc-stac's ``fail_on_error=False`` catches any rasterio error) and a
warning in the worker's log: neither loader reports which scene they came from.

stackstac and odc-stac through this seam
----------------------------------------
Measured on the rendered archive (``tests/test_cube.py``): bit-identical cubes for 10 m,
20 m and SCL bands, on grids shifted by a fraction of a pixel, and for scenes in another
UTM zone (both equal to ``rasterio.warp.reproject`` with nearest). What differs, and what
the seam does about it:

* stackstac's default ``xy_coords="topleft"`` labels pixels by their corner (half a pixel
  off ``grid.xy_coords()``): ``center`` is passed.
* odc-stac's default ``groupby="time"`` merges items with the same timestamp, which the two
  MGRS tiles of one datatake have: ``groupby="id"`` keeps one step per item, and
  :func:`merge_same_day` merges them deliberately.
* odc-stac fills with each band's nodata (1 for Landsat QA): ``nodata=0`` is forced.
* stackstac drops an item, or a band, none of whose assets the catalog places on the
  bounds; the seam restores them as nodata. When the catalog's ``proj:transform`` is
  wrong, stackstac trusts it (reads nothing), odc-stac reads the file wherever the item's
  footprint covers the grid.
* Read errors: stackstac turns only the listed messages into nodata and calls
  ``warnings.warn`` in the worker; odc-stac with ``fail_on_error=False`` skips any
  rasterio error and logs it.
* Noise: stackstac 0.5.1 emits affine's ``PendingDeprecationWarning`` per asset; odc-stac
  a ``NotGeoreferencedWarning`` from rasterio when it warps into a bare array (harmless).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from typing import Any, Literal
from urllib.parse import urlparse

import dask.array as da
import numpy as np
import odc.stac
import pandas as pd
import pystac
import rasterio
import stackstac
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from odc.loader import RioDriver
from pyproj import Transformer
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from stackstac.raster_spec import RasterSpec
from stackstac.rio_env import LayeredEnv
from stackstac.rio_reader import AutoParallelRioReader

from nampo.errors import CubeError, CubeWarning
from nampo.grid import Grid
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import MASK_BANDS, NormalisedItem

Loader = Literal["stackstac", "odc"]
CheckLevel = Literal["off", "header", "read"]

CUBE_DIMS = ("time", "band", "y", "x")
FILL = 0
"""DN of missing pixels in every band of a raw cube (Sentinel-2 and Landsat SR nodata)."""
MASK_BAND = "scl"
DEFAULT_MASK_CLASSES = (0, 1, 3, 8, 9, 10)
"""SCL classes made NaN by :func:`to_reflectance`: no data, saturated or defective, cloud
shadow, cloud medium and high probability, thin cirrus. Class 2 (dark area: coal looks
like this) and 11 (snow and ice: winter harbour ice is a signal) are kept."""

READ_ERRORS_AS_NODATA: tuple[Exception, ...] = (
    # The object disappeared between search and read (reprocessed or withdrawn scene).
    RasterioIOError(r".*HTTP response code: (404|410)\b"),
    RasterioIOError(r".*No such file or directory"),
    # Still rate-limited or failing after GDAL_HTTP_MAX_RETRY retries.
    RasterioIOError(r".*HTTP response code: (429|5\d\d)\b"),
    RasterioIOError(r".*(Operation timed out|Timeout was reached|Connection reset)"),
    # A block that cannot be fetched or decoded (truncated or corrupt file).
    RasterioIOError(r".*(IReadBlock failed|TIFFRead|Read error|Read failed)"),
)
"""Errors during a stackstac read that turn the chunk into nodata instead of failing the
computation (matched with ``re.match`` against the message, as stackstac does). Not in the
list, so they raise: HTTP 401/403 (credentials, expired Planetary Computer signatures:
every scene would be lost, fix the configuration) and "not recognized as a supported file
format" (the href is not a raster: a catalog error to fix, not to hide)."""

_PROJ_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
_RASTER_EXT = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"


# --------------------------------------------------------------------------------------
# Items for the loaders
# --------------------------------------------------------------------------------------


def loader_item(scene: NormalisedItem, bands: Sequence[str]) -> dict[str, Any]:
    """The STAC item (plain dict) both loaders read for `scene`.

    Assets are keyed by internal band name and carry ``proj:epsg``, ``proj:shape``,
    ``proj:transform`` and ``raster:bands`` (data type, nodata) from the normalised item,
    whatever the catalog put in its own item.
    """
    assets: dict[str, Any] = {}
    for name in bands:
        band = scene.bands[name]
        raster: dict[str, Any] = {"data_type": band.dtype}
        if band.nodata is not None:
            raster["nodata"] = band.nodata
        asset: dict[str, Any] = {
            "href": band.href,
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "proj:epsg": scene.epsg,
            "raster:bands": [raster],
        }
        if band.shape is not None and band.transform is not None:
            asset["proj:shape"] = list(band.shape)
            asset["proj:transform"] = list(band.transform)
        assets[name] = asset
    geometry = scene.stac.get("geometry")
    bbox = list(scene.bbox) if scene.bbox else None
    if geometry is None and bbox is not None:
        w, s, e, n = bbox
        geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [_PROJ_EXT, _RASTER_EXT],
        "id": scene.id,
        "collection": scene.collection or "nampo",
        "geometry": geometry,
        "bbox": bbox,
        "properties": {
            "datetime": scene.datetime.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "platform": scene.platform,
            "proj:epsg": scene.epsg,
        },
        "links": [],
        "assets": assets,
    }


def _geobox(grid: Grid) -> GeoBox:
    return GeoBox((grid.height, grid.width), grid.transform, f"EPSG:{grid.epsg}")


def _stackstac_env(gdal: GdalSettings) -> LayeredEnv:
    layers = gdal.layers()
    return LayeredEnv(always=layers["always"], open=layers["open"], read=layers["read"])


class AlignedReader(AutoParallelRioReader):
    """stackstac's reader (``stackstac.stack(reader=...)``), without a warp where the
    file's pixels already lie on the grid's lattice.

    stackstac reads every asset through a GDAL ``WarpedVRT`` unless the file is exactly
    the output grid, which a site tile never is. For a file in the grid's CRS whose
    pixels are an integer number of grid pixels, on the grid's lattice (Sentinel-2's 10,
    20 and 60 m bands on a 10 m site grid), nearest-neighbour resampling is a plain read
    of the file's window, each pixel repeated k x k times: the same values bit for bit,
    at about a third of the cost (measured: creating the VRT costs more than opening the
    file, and warping more than decoding). Every other case (another CRS, a grid shifted
    by a fraction of a pixel, a per-dataset mask, another data type, a file that does not
    open) goes to stackstac's own reader unchanged, and so do its error handling
    (``errors_as_nodata``), nodata masking and fill value.
    """

    def _open(self):
        file = OPEN_FILES.get(self.url, self.gdal_env)
        layout = None if file is None else _lattice_layout(file, self.spec, self.dtype)
        if layout is None:
            return super()._open()
        return _LatticeDataset(file, layout, self.gdal_env)


class _OpenFile:
    """An open file and what the lattice test needs of it, looked up once (the EPSG code
    and mask flags cost more than the read of a tile's window)."""

    def __init__(self, ds) -> None:
        self.ds = ds
        self.lock = threading.Lock()  # GDAL datasets must not be read from two threads at once
        self.single_band = ds.count == 1
        self.epsg = ds.crs.to_epsg() if ds.crs is not None else None
        self.dtype = ds.dtypes[0]
        self.plain_mask = all(
            f in (MaskFlags.nodata, MaskFlags.all_valid) for f in ds.mask_flag_enums[0]
        )
        self.transform = ds.transform
        self.width, self.height, self.nodata = ds.width, ds.height, ds.nodata

    def close(self) -> None:
        with self.lock:
            self.ds.close()


class OpenFiles:
    """The files a worker process has open, most recently used last, at most `size`.

    A site's tiles read the same scenes: without this, each of a run's units opened every
    file of its scenes again (Nampo: 12 tiles, ~500 files a baseline, 1.8 ms an open, the
    largest single cost of reading). A local file is known by its path, size and mtime, so
    a file replaced on disk is opened again; a remote one by its URL (published assets are
    not rewritten in place). A file that does not open is not kept: stackstac's own
    reader then reports it its own way."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._files: OrderedDict[tuple, _OpenFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, env: LayeredEnv) -> _OpenFile | None:
        key = _file_key(url)
        if key is None:
            return None
        with self._lock:
            file = self._files.get(key)
            if file is not None:
                self._files.move_to_end(key)
                return file
        # Opened without VSI_CACHE (the read layer): the handle lives on, and a per-handle
        # cache of everything read through it would add up over thousands of files.
        with env.read:
            try:
                file = _OpenFile(rasterio.open(url, sharing=False))
            except Exception:  # noqa: BLE001 - stackstac's open reports it its own way
                return None
        with self._lock:
            if key in self._files:  # another thread opened it meanwhile
                file.close()
                return self._files[key]
            self._files[key] = file
            while len(self._files) > self.size:
                _, old = self._files.popitem(last=False)
                old.close()
        return file

    def clear(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()


def _file_key(url: str) -> tuple | None:
    path = url.removeprefix("file://")
    if "://" in path:
        return (url,)
    try:
        st = os.stat(path)
    except OSError:
        return None  # missing: stackstac's reader says so
    return (path, st.st_size, st.st_mtime_ns)


OPEN_FILES = OpenFiles(size=640)
"""Per process. Above the files of a Nampo baseline unit (71 scenes x 7 bands), so that the
units of a site reuse them; an open COG costs about 0.25 MB (measured with rasterio 1.4,
GDAL's block cache apart), so at most ~160 MB a worker."""


def _lattice_layout(
    file: _OpenFile, spec: RasterSpec, dtype: np.dtype
) -> tuple[int, int, int, int] | None:
    """``(kx, ky, col, row)`` when each file pixel is exactly kx x ky grid pixels and the
    grid's origin is grid pixel (col, row) counted from the file's origin; else None."""
    if not file.single_band or file.epsg is None or file.epsg != spec.epsg:
        return None
    if not np.can_cast(file.dtype, dtype, casting="safe"):
        return None  # e.g. SCL is uint8 in the file: safe to widen, as GDAL does
    if not file.plain_mask:
        return None  # an alpha band or mask file: the masked read is GDAL's to make
    src, dst = file.transform, spec.transform
    if src.b or src.d or dst.b or dst.d or dst.a <= 0 or dst.e >= 0:
        return None
    values = (src.a / dst.a, src.e / dst.e, (dst.c - src.c) / dst.a, (dst.f - src.f) / dst.e)
    whole = [round(v) for v in values]
    if any(abs(v - w) > 1e-6 for v, w in zip(values, whole, strict=True)):
        return None
    kx, ky, col, row = (int(w) for w in whole)
    return (kx, ky, col, row) if kx >= 1 and ky >= 1 else None


class _LatticeDataset:
    """The part of stackstac's thread-safe dataset its reader uses (``read``, ``close``)
    for a file on the grid's lattice: windows of the grid read from the file and
    repeated, nodata and pixels outside the file masked (as the warped read masks them).
    The file stays open in :data:`OPEN_FILES` for the next unit."""

    def __init__(self, file: _OpenFile, layout: tuple[int, int, int, int], env: LayeredEnv):
        self.file = file
        self.kx, self.ky, self.col, self.row = layout
        self.env = env

    def read(self, window: Window, out_dtype=None, masked: bool = False, **kwargs) -> np.ndarray:
        height, width = int(window.height), int(window.width)
        out = np.zeros((1, height, width), dtype=out_dtype or self.file.dtype)
        inside = np.zeros((1, height, width), dtype=bool)
        # The window's first pixel, in grid pixels from the file's origin.
        c0 = self.col + int(window.col_off)
        r0 = self.row + int(window.row_off)
        j0, j1 = max(0, -c0), min(width, self.file.width * self.kx - c0)
        i0, i1 = max(0, -r0), min(height, self.file.height * self.ky - r0)
        if j1 > j0 and i1 > i0:
            fc0, fc1 = (c0 + j0) // self.kx, (c0 + j1 - 1) // self.kx + 1
            fr0, fr1 = (r0 + i0) // self.ky, (r0 + i1 - 1) // self.ky + 1
            with self.file.lock, self.env.read:
                data = self.file.ds.read(1, window=Window(fc0, fr0, fc1 - fc0, fr1 - fr0))
            if self.kx > 1 or self.ky > 1:
                data = np.repeat(np.repeat(data, self.ky, axis=0), self.kx, axis=1)
            y0, x0 = r0 + i0 - fr0 * self.ky, c0 + j0 - fc0 * self.kx
            data = data[y0 : y0 + i1 - i0, x0 : x0 + j1 - j0]
            out[0, i0:i1, j0:j1] = data
            inside[0, i0:i1, j0:j1] = True
            if self.file.nodata is not None:
                inside[0, i0:i1, j0:j1] = data != self.file.nodata
        return np.ma.masked_array(out, mask=~inside) if masked else out

    def close(self) -> None:
        pass  # OPEN_FILES closes it


class OdcDriver(RioDriver):
    """odc-stac's rasterio driver with nampo's GDAL settings.

    odc-stac captures the reader environment once per load (``capture_env``) and restores
    it in every task, so the settings travel in the graph like stackstac's ``gdal_env``,
    instead of odc's process-global ``configure_rio``.
    """

    def __init__(self, gdal: GdalSettings) -> None:
        super().__init__()
        self.gdal = gdal

    def capture_env(self) -> dict[str, Any]:
        # odc-stac itself switches VSI_CACHE off around pixel reads.
        return dict(self.gdal.open_options())


# --------------------------------------------------------------------------------------
# Pre-flight: which scenes can be read at all
# --------------------------------------------------------------------------------------


def check_assets(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: Sequence[str],
    *,
    gdal: GdalSettings = GdalSettings(),  # noqa: B008 (frozen)
    level: CheckLevel = "header",
    max_workers: int = 8,
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
            reasons = pool.map(lambda job: _check_asset(job[2], grid, gdal, level), jobs)
            for (scene_id, band, _), reason in zip(jobs, reasons, strict=True):
                if reason:
                    problems.setdefault(scene_id, []).append(f"{band}: {reason}")
    return {scene_id: "; ".join(reasons) for scene_id, reasons in problems.items()}


def _check_asset(href: str, grid: Grid, gdal: GdalSettings, level: CheckLevel) -> str | None:
    try:
        with gdal.env("open"), rasterio.open(href) as src:
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


def _overlaps(scene: NormalisedItem, grid: Grid, bands: Sequence[str]) -> bool:
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


# --------------------------------------------------------------------------------------
# The seam
# --------------------------------------------------------------------------------------


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
) -> xr.DataArray:
    """The cube of :func:`load_cube`, read into memory here (in the calling thread).

    For a task that needs a whole small cube at once (one site tile): every asset is
    opened and read once, by one Dask task per band, instead of being opened first by the
    pre-flight and again by the loader, and read by one task per scene and band. The
    pre-flight of :func:`check_assets` runs only when that read fails: the scenes it
    finds unreadable are then left out and reported, and the others read again, with
    the errors of :data:`READ_ERRORS_AS_NODATA` as nodata, exactly as :func:`load_cube`
    does. Same values, coordinates, attrs and skipped scenes as
    ``load_cube(...).compute()`` (a read that succeeds has nothing for the pre-flight to
    find: a missing, truncated, multi-band or unreferenced file fails the read too).

    Parameters are those of :func:`load_cube`; the result is numpy-backed.

    Examples
    --------
    >>> cube = read_cube(scenes, site.tile_grid(tile), ["red", "scl"])   # doctest: +SKIP
    >>> type(cube.data), skipped_scenes(cube)                            # doctest: +SKIP
    (<class 'numpy.ndarray'>, {})
    """
    bands, on_grid = _prepare(scenes, grid, bands, loader, grid.height, check)
    chunks = (max(1, len(on_grid)), max(grid.height, grid.width))
    if check != "off":
        # Only the item-level part of the pre-flight (no I/O): assets missing from items.
        missing = check_assets(on_grid, grid, bands, gdal=gdal, level="off")
        readable = [s for s in on_grid if s.id not in missing]
        try:
            cube = _cube(readable, grid, bands, loader, chunks, gdal, missing, tolerant=False)
            cube = cube.compute(scheduler="synchronous")
        except Exception:  # noqa: BLE001 - any failure: the pre-flight tells which scene
            pass
        else:
            _warn_skipped(missing, len(on_grid))
            return cube
    skipped = check_assets(on_grid, grid, bands, gdal=gdal, level=check)
    _warn_skipped(skipped, len(on_grid))
    usable = [s for s in on_grid if s.id not in skipped]
    cube = _cube(usable, grid, bands, loader, chunks, gdal, skipped, tolerant=True)
    return cube.compute(scheduler="synchronous")


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
    return bands, [s for s in ordered if _overlaps(s, grid, bands)]


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
        data = _load_stackstac(scenes, grid, bands, chunks, gdal, tolerant)
    else:
        data = _load_odc(scenes, grid, bands, chunks, gdal, tolerant)
    return _wrap(data, scenes, grid, bands, loader=loader, skipped=skipped)


def skipped_scenes(cube: xr.DataArray | xr.Dataset) -> dict[str, str]:
    """``{scene id: reason}`` of the scenes :func:`load_cube` left out as unreadable."""
    text = cube.attrs.get("skipped")
    return dict(json.loads(text)) if text else {}


def _load_stackstac(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    chunks: tuple[int, int],
    gdal: GdalSettings,
    tolerant: bool,
) -> da.Array:
    time_chunk, chunk_px = chunks
    items = [loader_item(s, bands) for s in scenes]
    stack = stackstac.stack(
        items,
        assets=bands,
        epsg=grid.epsg,
        resolution=grid.resolution,
        bounds=grid.bounds,
        snap_bounds=False,
        resampling=Resampling.nearest,
        chunksize=(time_chunk, 1, chunk_px, chunk_px),
        # numpy 2: float dtypes with rescale=True or a NaN fill fail (stackstac 249/250).
        dtype=np.dtype("uint16"),
        fill_value=np.uint16(FILL),
        rescale=False,
        sortby_date=False,
        xy_coords="center",
        properties=False,
        band_coords=False,
        gdal_env=_stackstac_env(gdal),
        errors_as_nodata=READ_ERRORS_AS_NODATA if tolerant else (),
        reader=AlignedReader,
    )
    _check_xy(stack, grid, "stackstac")
    # stackstac drops items (and bands) with no asset overlapping the bounds: put them
    # back as nodata so the cube has exactly one step per scene and every band.
    got = (list(stack["id"].values), list(stack["band"].values))
    want = ([s.id for s in scenes], bands)
    if got != want:
        stack = (
            stack.swap_dims(time="id")
            .reindex(id=want[0], band=want[1], fill_value=np.uint16(FILL))
            .swap_dims(id="time")
        )
    return stack.data


def _load_odc(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    chunks: tuple[int, int],
    gdal: GdalSettings,
    tolerant: bool,
) -> da.Array:
    time_chunk, chunk_px = chunks
    items = [pystac.Item.from_dict(loader_item(s, bands)) for s in scenes]
    ds = odc.stac.load(
        items,
        bands=bands,
        geobox=_geobox(grid),
        chunks={"time": time_chunk, "y": chunk_px, "x": chunk_px},
        resampling="nearest",
        dtype="uint16",
        nodata=FILL,
        groupby="id",  # one step per item, in the order given
        preserve_original_order=True,
        fail_on_error=not tolerant,
        driver=OdcDriver(gdal),
    )
    if ds.sizes["time"] != len(scenes):
        raise CubeError(f"odc-stac gave {ds.sizes['time']} time steps for {len(scenes)} scenes")
    _check_xy(ds, grid, "odc-stac")
    return da.stack([ds[b].data for b in bands], axis=1)


def _check_xy(obj: xr.DataArray | xr.Dataset, grid: Grid, who: str) -> None:
    # A loader that moved the grid by a fraction of a pixel is a bug to see, not to paper
    # over by overwriting its coordinates.
    x, y = grid.xy_coords()
    tol = grid.resolution * 1e-6
    if (
        obj.sizes["x"] != grid.width
        or obj.sizes["y"] != grid.height
        or not np.allclose(obj["x"].values, x, rtol=0, atol=tol)
        or not np.allclose(obj["y"].values, y, rtol=0, atol=tol)
    ):
        raise CubeError(f"{who} did not load on the grid {grid}")


def _wrap(
    data: da.Array,
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    *,
    loader: str,
    skipped: Mapping[str, str],
) -> xr.DataArray:
    x, y = grid.xy_coords()
    times = pd.DatetimeIndex([s.datetime for s in scenes], dtype="datetime64[ns, UTC]")
    spatial = xr_coords(_geobox(grid), crs_coord_name="spatial_ref")["spatial_ref"]
    coords: dict[Hashable, Any] = {
        "time": ("time", times.tz_convert(None).to_numpy()),
        "band": ("band", np.array(bands, dtype=str)),
        "y": ("y", y, {"units": "m", "axis": "Y", "standard_name": "projection_y_coordinate"}),
        "x": ("x", x, {"units": "m", "axis": "X", "standard_name": "projection_x_coordinate"}),
        "id": ("time", _strings(s.id for s in scenes)),
        "tile": ("time", _strings(s.tile or "" for s in scenes)),
        "platform": ("time", _strings(s.platform for s in scenes)),
        "spatial_ref": spatial,
    }
    return xr.DataArray(
        data,
        dims=CUBE_DIMS,
        coords=coords,
        name="dn",
        attrs={
            "crs": f"EPSG:{grid.epsg}",
            "nodata": FILL,
            "loader": loader,
            "resampling": "nearest",
            "skipped": json.dumps(dict(sorted(skipped.items()))),
        },
    )


def _strings(values) -> np.ndarray:
    out = np.array(list(values), dtype=str)
    return out if out.size else np.array([], dtype="<U1")


# --------------------------------------------------------------------------------------
# Reflectance and masks
# --------------------------------------------------------------------------------------


def to_reflectance(
    raw: xr.DataArray,
    scenes: Sequence[NormalisedItem],
    *,
    mask_classes: Sequence[int] = DEFAULT_MASK_CLASSES,
) -> xr.Dataset:
    """Float32 reflectance of a raw cube, masked by the scenes' own mask band.

    Each scene's own ``scale`` and ``offset`` are applied (Sentinel-2 baseline 04.00 and
    later: ``DN * 1e-4 - 0.1``; before: ``DN * 1e-4``), taken from its normalised item, not
    from the file. Stays lazy.

    The mask is whichever mask band the cube holds, read as Scene Classification codes so
    that every later step speaks one language (see :func:`mask_codes`):

    * ``scl`` (Sentinel-2 L2A): the classes themselves;
    * ``qa_pixel`` (Landsat Collection 2): its bits as SCL codes (:data:`QA_PIXEL_CLASSES`);
    * none (Sentinel-2 L1C has no mask): 0 where the first band has no data, else
      :data:`UNMASKED` (7, "unclassified", never masked). L1C is top-of-atmosphere
      reflectance and clouds stay in: the median of a month's scenes, and change rules
      that ask for change seen against the whole scene, are what keep a cloud out.

    Parameters
    ----------
    raw
        A cube from :func:`load_cube`, with ``scl`` or ``qa_pixel`` or no mask band.
    scenes
        The normalised items of the cube (more are fine: matched by ``id``).
    mask_classes
        SCL classes that make a pixel NaN (default: :data:`DEFAULT_MASK_CLASSES`).

    Returns
    -------
    xarray.Dataset
        ``reflectance`` (time, band, y, x) float32 for every band but the mask, NaN where
        the DN is nodata or the pixel is not clear; ``scl`` (time, y, x) uint8 SCL codes;
        ``clear`` (time, y, x) bool: has data and its code is not in `mask_classes`.

    Examples
    --------
    >>> ds = to_reflectance(load_cube(scenes, grid, ["red", "scl"]), scenes)  # doctest: +SKIP
    >>> ds.reflectance.dtype, ds.clear.dtype                                  # doctest: +SKIP
    (dtype('float32'), dtype('bool'))
    """
    present = [str(b) for b in raw["band"].values if str(b) in MASK_BANDS]
    if len(present) > 1:
        raise CubeError(f"the cube holds two mask bands {present}; load one")
    mask_band = present[0] if present else None
    by_id = {s.id: s for s in scenes}
    ids = [str(i) for i in raw["id"].values]
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise CubeError(f"no normalised item for scenes {missing} of the cube")
    names = [str(b) for b in raw["band"].values if b != mask_band]
    if not names:
        raise CubeError("the cube holds no band but its mask")
    for i in ids:
        lacking = [b for b in names if b not in by_id[i].bands]
        if lacking:
            raise CubeError(f"scene {i} has no band(s) {lacking}")

    def table(field: str) -> np.ndarray:
        values = [[_num(getattr(by_id[i].bands[b], field)) for b in names] for i in ids]
        return np.array(values, dtype=np.float32).reshape(len(ids), len(names))

    tables = np.stack([table("scale"), table("offset"), table("nodata")])
    classes = np.array(sorted({int(c) for c in mask_classes}), dtype=np.uint16)
    dn = raw.isel(band=_positions(raw, names))
    scl_4d = mask_codes(raw, mask_band)
    scl_dn = dn.isel(band=0, drop=True).copy(data=scl_4d[:, 0])
    # One task per chunk and output, the per-scene factors looked up in the task from the
    # chunk's place (xarray arithmetic with (time, band) tables makes ~25 tasks a chunk).
    if isinstance(dn.data, da.Array):
        values = da.map_blocks(
            _reflectance_block,
            dn.data,
            scl_4d,
            tables=tables,
            classes=classes,
            dtype=np.float32,
            meta=np.array((), dtype=np.float32),
        )
        clear_data = da.map_blocks(
            _clear_kernel,
            scl_dn.data,
            classes=classes,
            dtype=bool,
            meta=np.array((), dtype=bool),
        )
    else:
        scale, offset, nodata = (t[:, :, None, None] for t in tables)
        values = _reflectance_kernel(
            np.asarray(dn.data), np.asarray(scl_4d), scale, offset, nodata, classes
        )
        clear_data = _clear_kernel(np.asarray(scl_dn.data), classes)
    reflectance = dn.copy(data=values)
    clear = scl_dn.copy(data=clear_data)
    scl = scl_dn.astype(np.uint8)
    reflectance.attrs = {"units": "1", "long_name": "reflectance"}
    scl.attrs = {
        "long_name": "Sentinel-2 scene classification codes",
        "source": mask_band or "none",
        "nodata": FILL,
    }
    clear.attrs = {
        "long_name": "has data and its mask class is not masked",
        "mask_classes": json.dumps(classes.tolist()),
    }
    attrs = {k: v for k, v in raw.attrs.items() if k not in ("nodata",)}
    return xr.Dataset(
        {"reflectance": reflectance, "scl": scl, "clear": clear},
        attrs={**attrs, "mask_classes": json.dumps(classes.tolist()), "mask_band": mask_band or ""},
    )


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
    :func:`to_reflectance`); lazy when the cube is."""
    if mask_band == MASK_BAND:
        return raw.isel(band=_positions(raw, [MASK_BAND])).data
    if mask_band == "qa_pixel":
        qa = raw.isel(band=_positions(raw, ["qa_pixel"])).data
        return _map(_qa_kernel, qa)
    first = raw.isel(band=slice(0, 1)).data
    return _map(_no_mask_kernel, first)


def _map(fn, data):
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


def _positions(raw: xr.DataArray, names: Sequence[str]) -> slice | list[int]:
    """Where `names` are in the cube's bands: a slice when they are consecutive, so that
    a numpy-backed cube is viewed, not copied (a tile's year of DNs is tens of MB)."""
    bands = [str(b) for b in raw["band"].values]
    where = [bands.index(n) for n in names]
    if where == list(range(where[0], where[0] + len(where))):
        return slice(where[0], where[0] + len(where))
    return where


def _clear_kernel(scl: np.ndarray, classes: np.ndarray) -> np.ndarray:
    # A lookup table indexed by the DN: one pass over the pixels (np.isin sorts and
    # searches). SCL DNs are small classes, but any uint16 DN has an entry.
    clear = np.ones(2**16 if scl.dtype.itemsize > 1 else 2**8, dtype=bool)
    clear[FILL] = False
    clear[classes.astype(np.intp)] = False
    return clear[scl]


def _reflectance_block(
    dn: np.ndarray, scl: np.ndarray, tables: np.ndarray, classes: np.ndarray, block_info=None
) -> np.ndarray:
    (t0, t1), (b0, b1) = block_info[0]["array-location"][:2]
    scale, offset, nodata = (t[t0:t1, b0:b1, None, None] for t in tables)
    return _reflectance_kernel(dn, scl, scale, offset, nodata, classes)


def _reflectance_kernel(
    dn: np.ndarray,
    scl: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    nodata: np.ndarray,
    classes: np.ndarray,
) -> np.ndarray:
    """DN * scale + offset in float32, NaN where the DN is nodata or SCL is not clear.

    `dn` is (time, band, y, x), `scl` (time, 1, y, x), the tables broadcast to `dn`."""
    # In place on one float32 copy: the cube of a tile's year is hundreds of MB.
    out = dn.astype(np.float32)
    # One boolean array, or-ed in place. nodata is NaN for a band without one: the
    # comparison is then False everywhere.
    invalid = dn == FILL
    invalid |= out == nodata
    invalid |= ~_clear_kernel(scl, classes)
    out *= scale
    out += offset
    out[np.broadcast_to(invalid, out.shape)] = np.float32(np.nan)
    return out


def _num(value: float | None) -> float:
    return np.nan if value is None else float(value)


# --------------------------------------------------------------------------------------
# One time step per day
# --------------------------------------------------------------------------------------


def merge_same_day(data: xr.DataArray | xr.Dataset) -> xr.DataArray | xr.Dataset:
    """Merge the items of one platform and solar day into one time step.

    A datatake crossing an MGRS tile edge is published once per tile (51SYC and 51SXC):
    the same pixels where the tiles overlap, each tile's own elsewhere. Per pixel the first
    valid value in time order wins (0 is invalid in integer arrays, NaN in float ones;
    boolean arrays such as ``clear`` are or-ed). The merged step takes the first item's
    time, ``platform``, and ``id`` and ``tile`` joined with ``+``. Stays lazy.

    The day is the solar day at the grid's centre (UTC plus longitude / 15 hours), as
    odc-stac's ``groupby="solar_day"``, so a site near the date line keeps one overpass
    on one day.

    Examples
    --------
    >>> merged = merge_same_day(load_cube(scenes, grid, ["red", "scl"]))   # doctest: +SKIP
    >>> merged.tile.values[:1]                                             # doctest: +SKIP
    array(['51SXC+51SYC'], dtype='<U11')
    """
    if data.sizes.get("time", 0) == 0:
        return data
    lon = _centre_lon(data)
    times = pd.DatetimeIndex(data["time"].values)
    days = (times + timedelta(hours=lon / 15)).floor("D")
    platforms = [str(p) for p in data["platform"].values]
    groups: dict[tuple[str, pd.Timestamp], list[int]] = {}
    for index, key in enumerate(zip(platforms, days, strict=True)):
        groups.setdefault(key, []).append(index)

    per_time = ("id", "tile", "platform")
    plain = data.drop_vars([c for c in per_time if c in data.coords])
    pieces = []
    for members in groups.values():
        merged = plain.isel(time=members[0])
        for index in members[1:]:
            merged = _fill(merged, plain.isel(time=index))
        pieces.append(merged)
    out = xr.concat(pieces, dim="time", coords="minimal", compat="override", join="exact")

    def joined(name: str) -> np.ndarray:
        values = [str(v) for v in data[name].values]
        return _strings("+".join(dict.fromkeys(values[i] for i in m)) for m in groups.values())

    out = out.assign_coords(
        id=("time", joined("id")),
        tile=("time", joined("tile")),
        platform=("time", _strings(platforms[m[0]] for m in groups.values())),
    )
    out.attrs = dict(data.attrs)
    return out


def _fill(first, second):
    """`first` where it is valid, else `second` (DataArray or Dataset, no time dim)."""
    if isinstance(first, xr.Dataset):
        return first.copy(data={k: _fill(first[k], second[k]).data for k in first.data_vars})
    a, b = first.data, second.data
    if first.dtype == bool:
        return first.copy(data=a | b)
    valid = ~np.isnan(a) if first.dtype.kind == "f" else a != FILL
    return first.copy(data=np.where(valid, a, b))


def _centre_lon(data: xr.DataArray | xr.Dataset) -> float:
    crs = data.attrs.get("crs")
    if crs is None and "spatial_ref" in data.coords:
        crs = data["spatial_ref"].attrs.get("crs_wkt")
    if crs is None:
        raise CubeError("cannot tell the cube's CRS (no 'crs' attr or 'spatial_ref' coord)")
    x = float(data["x"].values[[0, -1]].mean())
    y = float(data["y"].values[[0, -1]].mean())
    lon, _ = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    return float(lon)
