"""nampo's one Cloud-Optimized GeoTIFF writer (GDAL's ``COG`` driver, DEFLATE, internal
tiles and overviews, written under a temporary name and renamed into place).

Its callers: the importer's bands, the simulator's scenes and truth, the report's exports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp

RESAMPLINGS = ("nearest", "average", "mode", "bilinear", "cubic", "lanczos")
"""Overview resampling methods accepted by :func:`write_cog` (GDAL's names)."""

__all__ = ["RESAMPLINGS", "write_cog"]

_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def write_cog(
    path: Path,
    data: np.ndarray,
    transform: Affine,
    epsg: int,
    *,
    nodata: float | None = 0,
    resampling: str = "average",
    blocksize: int = 256,
    predictor: int = 2,
    descriptions: Sequence[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write `data` to `path` as a Cloud-Optimized GeoTIFF.

    The file is written next to `path` under a temporary name and renamed into place, so a
    crash never leaves a half-written COG where a reader would find it.

    Parameters
    ----------
    path
        Destination file (its folder must exist). An existing file is replaced.
    data
        A 2-D array (rows, cols), or a 3-D band-first array (bands, rows, cols) such as the
        uint8 RGB ``visual`` asset. Its dtype is written as is.
    transform
        Geotransform of the array's upper-left corner (north-up).
    epsg
        EPSG code of the CRS.
    nodata
        Value recorded as nodata in the file (Earth Search uses 0 for every asset), or None.
    resampling
        How overviews are computed: ``"average"`` for reflectance, ``"nearest"`` for
        classes such as SCL (an average of class codes is not a class).
    blocksize
        Internal tile size in pixels (a multiple of 16). GDAL adds overview levels,
        halving each time, until the image fits in one tile, so an image no larger than
        one tile has no overviews (it needs none).
    predictor
        TIFF predictor: 2 (horizontal differencing, about 2x smaller for smooth integer
        bands) or 1 (none, as the report's float exports are written).
    descriptions
        A description per band (GDAL's band description), or None.
    colormap
        A colour table for the single band (value -> RGBA), or None.
    tags
        Dataset metadata items, or None.

    Returns
    -------
    The path written.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from affine import Affine
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_cog(Path(d) / "B04.tif", np.ones((600, 1000), "uint16"),
    ...                      Affine(10, 0, 350000, 0, -10, 4290000), 32651)
    """
    if data.ndim not in (2, 3):
        raise ValueError(
            f"data must be 2-D (rows, cols) or 3-D (bands, rows, cols), got shape {data.shape}"
        )
    if data.dtype.name not in _DTYPES:
        raise ValueError(f"data dtype {data.dtype} is not one of {', '.join(_DTYPES)}")
    if resampling not in RESAMPLINGS:
        raise ValueError(f"resampling {resampling!r} is not one of {', '.join(RESAMPLINGS)}")
    if blocksize <= 0 or blocksize % 16:
        raise ValueError(f"blocksize {blocksize} is not a positive multiple of 16")
    if predictor not in (1, 2):
        raise ValueError(f"predictor {predictor} is not 1 (none) or 2 (horizontal)")
    bands = data[np.newaxis] if data.ndim == 2 else data
    count, height, width = bands.shape
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # GDAL's COG driver can only CreateCopy; rasterio stages the array in memory and
        # copies it to the COG layout (tiles, then overviews, then ghost header) on close.
        with rasterio.open(
            tmp,
            "w",
            driver="COG",
            width=width,
            height=height,
            count=count,
            dtype=bands.dtype,
            crs=f"EPSG:{epsg}",
            transform=transform,
            nodata=nodata,
            compress="DEFLATE",
            # the COG driver takes NO for none (a bare 1 is warned about, then ignored)
            predictor="NO" if predictor == 1 else predictor,
            blocksize=blocksize,
            overview_resampling=resampling.upper(),
            num_threads=1,  # the renderer runs one process per core already
            statistics="NO",  # readers do not need them, and they cost a pass over the data
        ) as dst:
            dst.write(bands)
            if count == 3 and bands.dtype == np.uint8:
                # a true-colour image, as ES's TCI: viewers then draw it in colour
                dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
            for i, description in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, description)
            if colormap:
                dst.write_colormap(1, dict(colormap))
            if tags:
                dst.update_tags(**tags)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
