"""What every cube looks like, whichever loader read it: dims, fill value, and the
coordinates of the requested grid."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from nampo.errors import CubeError
from nampo.grid import Grid
from nampo.io.scenes import NormalisedItem

__all__ = ["CUBE_DIMS", "FILL", "check_xy", "geobox", "string_coord", "wrap"]

CUBE_DIMS = ("time", "band", "y", "x")
FILL = 0
"""DN of missing pixels in every band of a raw cube (Sentinel-2 and Landsat SR nodata)."""


def geobox(grid: Grid) -> GeoBox:
    """`grid` as odc-geo's GeoBox (odc-stac's output grid, and the ``spatial_ref`` coord)."""
    return GeoBox((grid.height, grid.width), grid.transform, f"EPSG:{grid.epsg}")


def check_xy(obj: xr.DataArray | xr.Dataset, grid: Grid, who: str) -> None:
    """Raise :class:`CubeError` unless `obj` (a loader's output) lies exactly on `grid`."""
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


def wrap(
    data: da.Array,
    scenes: Sequence[NormalisedItem],
    grid: Grid,
    bands: list[str],
    *,
    loader: str,
    skipped: Mapping[str, str],
) -> xr.DataArray:
    """The cube of a loader's ``(time, band, y, x)`` array `data`: named ``dn``, with
    the grid's coordinates, per-scene ``id``/``tile``/``platform`` and the attrs
    :func:`~nampo.io.cube.load_cube` documents (`skipped` as JSON)."""
    x, y = grid.xy_coords()
    times = pd.DatetimeIndex([s.datetime for s in scenes], dtype="datetime64[ns, UTC]")
    spatial = xr_coords(geobox(grid), crs_coord_name="spatial_ref")["spatial_ref"]
    coords: dict[Hashable, Any] = {
        "time": ("time", times.tz_convert(None).to_numpy()),
        "band": ("band", np.array(bands, dtype=str)),
        "y": ("y", y, {"units": "m", "axis": "Y", "standard_name": "projection_y_coordinate"}),
        "x": ("x", x, {"units": "m", "axis": "X", "standard_name": "projection_x_coordinate"}),
        "id": ("time", string_coord(s.id for s in scenes)),
        "tile": ("time", string_coord(s.tile or "" for s in scenes)),
        "platform": ("time", string_coord(s.platform for s in scenes)),
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


def string_coord(values: Iterable[str]) -> np.ndarray:
    """`values` as a fixed-width unicode array (never object dtype, which ``to_zarr``
    refuses), for a per-time coordinate."""
    out = np.array(list(values), dtype=str)
    return out if out.size else np.array([], dtype="<U1")
