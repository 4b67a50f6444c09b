"""The stackstac loader: the reader that skips the warp for files on the grid's lattice,
and the per-process cache of open files it reads from (see docs/cube.md)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import dask.array as da
import numpy as np
import rasterio
import stackstac
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window, from_bounds
from stackstac.raster_spec import RasterSpec
from stackstac.rio_env import LayeredEnv
from stackstac.rio_reader import AutoParallelRioReader

from nampo.grid import Grid
from nampo.io.cube.items import loader_item
from nampo.io.cube.layout import FILL, check_xy
from nampo.io.gdal import GdalSettings, open_remote_retried
from nampo.io.scenes import NormalisedItem

__all__ = [
    "OPEN_FILES",
    "READ_ERRORS_AS_NODATA",
    "AlignedReader",
    "OpenFiles",
    "load_stackstac",
]

Bounds = tuple[float, float, float, float]

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
    at a fraction of the cost (docs/cube.md). Every other case (another CRS, a grid
    shifted by a fraction of a pixel, a per-dataset mask, another data type, a file that
    does not open) goes to stackstac's own reader unchanged, and so do its error handling
    (``errors_as_nodata``), nodata masking and fill value.
    """

    def __init__(self, *, prefetch: Bounds | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.prefetch = prefetch
        """Bounds (in the grid's CRS) whose blocks are read at once when the file is
        opened, so that the next windows of the file come from GDAL's block cache."""

    def __getstate__(self):
        return {**super().__getstate__(), "prefetch": self.prefetch}

    def __setstate__(self, state) -> None:
        AlignedReader.__init__(self, **state)

    def _open(self):
        file = OPEN_FILES.get(self.url, self.gdal_env, self.prefetch, self.spec.epsg)
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
    file of its scenes again (opening was the largest single cost of reading, see
    docs/cube.md). A local file is known by its path, size and mtime, so a file replaced
    on disk is opened again; a remote one by its URL (published assets are not rewritten
    in place). A file that does not open is not kept: stackstac's own reader then reports
    it its own way."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._files: OrderedDict[tuple, _OpenFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        url: str,
        env: LayeredEnv,
        prefetch: Bounds | None = None,
        epsg: int | None = None,
    ) -> _OpenFile | None:
        """The open file of `url` (opened now if it is not open). `prefetch`: bounds in
        EPSG `epsg` whose blocks are read into GDAL's block cache when the file is opened
        (one request for what the later windows of a site's tiles need)."""
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
                ds = open_remote_retried(url, partial(rasterio.open, url, sharing=False))
                file = _OpenFile(ds)
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
        if prefetch is not None and epsg is not None and file.epsg == epsg:
            _read_ahead(file, prefetch, env)
        return file

    def clear(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()


def _read_ahead(file: _OpenFile, bounds: Bounds, env: LayeredEnv) -> None:
    """Read the blocks of `file` under `bounds` (its CRS) into GDAL's block cache: GDAL
    fetches them in as few requests as their byte ranges allow, where window by window
    each tile's read is a request of its own. A failure here is left to the window reads
    to report."""
    window = from_bounds(*bounds, transform=file.transform)
    col0, row0 = max(0, int(np.floor(window.col_off))), max(0, int(np.floor(window.row_off)))
    col1 = min(file.width, int(np.ceil(window.col_off + window.width)))
    row1 = min(file.height, int(np.ceil(window.row_off + window.height)))
    if col1 <= col0 or row1 <= row0:
        return
    try:
        with file.lock, env.read:
            file.ds.read(1, window=Window(col0, row0, col1 - col0, row1 - row0))
    except Exception:  # noqa: BLE001, S110 - the window reads report their own failures
        pass


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
units of a site reuse them; at most ~160 MB a worker (sizes in docs/cube.md)."""


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


def load_stackstac(
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    chunks: tuple[int, int],
    gdal: GdalSettings,
    tolerant: bool,
    prefetch: Bounds | None = None,
) -> da.Array:
    """The ``(time, band, y, x)`` Dask array of `scenes` read by stackstac onto `grid`:
    one step per scene and every band, in the order given (see :func:`nampo.io.cube.load_cube`).
    `prefetch`: bounds (grid CRS) each file's blocks are read for when it is opened."""
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
        reader=AlignedReader if prefetch is None else partial(AlignedReader, prefetch=prefetch),
    )
    check_xy(stack, grid, "stackstac")
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
