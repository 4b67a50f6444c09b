"""Reflectance from a raw cube (each scene's own scale and offset, masked by its mask
band), and the merge of one platform's items of one solar day into one time step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TypeVar

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from nampo.errors import CubeError
from nampo.io.cube import FILL, string_coord
from nampo.io.scenes import MASK_BANDS, NormalisedItem
from nampo.products.masks import DEFAULT_MASK_CLASSES, band_positions, clear_kernel, mask_codes

__all__ = ["merge_same_day", "to_reflectance"]

Cube = TypeVar("Cube", xr.DataArray, xr.Dataset)


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
    that every later step speaks one language (see
    :func:`~nampo.products.masks.mask_codes`):

    * ``scl`` (Sentinel-2 L2A): the classes themselves;
    * ``qa_pixel`` (Landsat Collection 2): its bits as SCL codes
      (:data:`~nampo.products.masks.QA_PIXEL_CLASSES`);
    * none (Sentinel-2 L1C has no mask): 0 where the first band has no data, else
      :data:`~nampo.products.masks.UNMASKED` (7, "unclassified", never masked). L1C is
      top-of-atmosphere reflectance and clouds stay in: the median of a month's scenes,
      and change rules that ask for change seen against the whole scene, are what keep a
      cloud out.

    Parameters
    ----------
    raw
        A cube from :func:`~nampo.io.cube.load_cube`, with ``scl`` or ``qa_pixel`` or no
        mask band.
    scenes
        The normalised items of the cube (more are fine: matched by ``id``).
    mask_classes
        SCL classes that make a pixel NaN (default:
        :data:`~nampo.products.masks.DEFAULT_MASK_CLASSES`).

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
    dn = raw.isel(band=band_positions(raw, names))
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
            clear_kernel,
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
        clear_data = clear_kernel(np.asarray(scl_dn.data), classes)
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
    invalid |= ~clear_kernel(scl, classes)
    out *= scale
    out += offset
    out[np.broadcast_to(invalid, out.shape)] = np.float32(np.nan)
    return out


def _num(value: float | None) -> float:
    return np.nan if value is None else float(value)


def merge_same_day(data: Cube) -> Cube:
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
    pieces: list[Cube] = []
    for members in groups.values():
        merged = plain.isel(time=members[0])
        for index in members[1:]:
            merged = _fill(merged, plain.isel(time=index))
        pieces.append(merged)
    out = xr.concat(pieces, dim="time", coords="minimal", compat="override", join="exact")

    def joined(name: str) -> np.ndarray:
        values = [str(v) for v in data[name].values]
        return string_coord("+".join(dict.fromkeys(values[i] for i in m)) for m in groups.values())

    out = out.assign_coords(
        id=("time", joined("id")),
        tile=("time", joined("tile")),
        platform=("time", string_coord(platforms[m[0]] for m in groups.values())),
    )
    out.attrs = dict(data.attrs)
    return out


def _fill(first: Cube, second: Cube) -> Cube:
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
