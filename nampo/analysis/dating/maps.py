"""Change dating over a store's months with xarray and Dask: :func:`change_map` runs
:func:`~nampo.analysis.dating.search.detect` tile by tile (one (y, x) chunk each), then
leaves out the mixed pixels at the edges of changes across tile edges
(:func:`~nampo.analysis.dating.edges.mixed_edges`), and :func:`change_dates` turns its
month indices into days."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo.analysis.dating.edges import mixed_edges
from nampo.analysis.dating.params import CHANGE_CLASSES, NO_CHANGE, TYPES, ChangeParams
from nampo.analysis.dating.search import detect
from nampo.products.variables import COMPOSITE_BANDS

__all__ = ["OUTPUTS", "change_dates", "change_map"]


OUTPUTS = {
    "type": "uint8",
    "class_before": "uint8",
    "class_after": "uint8",
    "last_before": "int16",
    "first_after": "int16",
    "n_before": "uint8",
    "n_after": "uint8",
    "magnitude": "float32",
    "shape_change": "float32",
    "confidence": "float32",
}
"""The variables of a change map, and their dtypes."""


def _tile(ds: xr.Dataset, params: ChangeParams) -> xr.Dataset:
    lc = ds["landcover"].values
    bands = np.stack([ds[b].values for b in COMPOSITE_BANDS]).astype("float32")
    moy = ds["time"].dt.month.values
    res = detect(lc, bands, moy, params)
    return xr.Dataset(
        {k: (("y", "x"), res[k].astype(dt)) for k, dt in OUTPUTS.items()},
        coords={"y": ds["y"], "x": ds["x"]},
    )


def change_map(
    ds: xr.Dataset,
    params: ChangeParams = ChangeParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """The change map of a monthly series, computed tile by tile (lazily on Dask).

    Parameters
    ----------
    ds : the store's products over the months to analyse (at least ``landcover`` and the
        six bands), as :meth:`nampo.io.store.Store.open` gives them (``sel(time=...)``).
        Each (y, x) chunk is one tile; time is brought into one chunk.
    params : the method's parameters.

    Returns
    -------
    xr.Dataset with (y, x) variables :data:`OUTPUTS`, the time coordinate of the series as
    ``time`` (``last_before``/``first_after`` index it), and ``flag_values`` and
    ``flag_meanings`` on the class and type variables.

    Examples
    --------
    >>> ds = Store("nampo.zarr").open().sel(time=slice("2015-07", "2018-06"))  # doctest: +SKIP
    >>> cm = change_map(ds).compute()  # doctest: +SKIP
    """
    sub = ds[["landcover", *COMPOSITE_BANDS]]
    if sub.chunks:
        sub = sub.chunk({"time": -1})
        template = xr.Dataset(
            {
                k: (("y", "x"), _dask_zeros(sub["landcover"].data[0], dt))
                for k, dt in OUTPUTS.items()
            },
            coords={"y": sub["y"], "x": sub["x"]},
        )
        out = xr.map_blocks(_tile, sub, kwargs={"params": params}, template=template)
    else:
        out = _tile(sub, params)
    out = _without_mixed_edges(out, params.min_edge_share)
    out = out.assign_coords(time=ds["time"].values)
    if "spatial_ref" in ds.coords:
        out = out.assign_coords(spatial_ref=ds["spatial_ref"])
    out["type"].attrs.update(flag_values=list(TYPES), flag_meanings=" ".join(TYPES.values()))
    for name in ("class_before", "class_after"):
        out[name].attrs.update(
            flag_values=list(CHANGE_CLASSES), flag_meanings=" ".join(CHANGE_CLASSES.values())
        )
    return out


def _without_mixed_edges(cm: xr.Dataset, min_share: float) -> xr.Dataset:
    """The change map with the mixed pixels at the edges of changes set to no change (rule
    11). Tiles are read with two pixels of their neighbours (a pixel's reference is its
    neighbours, each judged by its own neighbours): an edge is an edge wherever the tiles
    meet."""
    typ, mag = cm["type"].data, cm["magnitude"].data
    if isinstance(typ, np.ndarray):
        drop = mixed_edges(typ, mag, min_share)
    else:
        import dask.array as da

        drop = da.map_overlap(
            mixed_edges, typ, mag, depth=2, boundary="none", dtype=bool, min_share=min_share
        )
    keep = xr.DataArray(~drop, dims=("y", "x"))
    return cm.assign({k: cm[k].where(keep, NO_CHANGE[k]).astype(cm[k].dtype) for k in OUTPUTS})


def _dask_zeros(like, dtype: str):
    import dask.array as da

    return da.zeros(like.shape, dtype=dtype, chunks=like.chunks)


def change_dates(cm: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: the middle of the last clear month before, of the first clear month after,
    and the estimated day of change halfway between (datetime64[D], NaT without change)."""
    months = cm["time"].values.astype("datetime64[D]")
    mid = months + np.timedelta64(14, "D")
    lb, fa = cm["last_before"].values, cm["first_after"].values
    has = (cm["type"].values > 0) & (lb >= 0) & (fa >= 0)
    nat = np.datetime64("NaT", "D")
    before = np.where(has, mid[np.clip(lb, 0, None)], nat)
    after = np.where(has, mid[np.clip(fa, 0, None)], nat)
    day = before + (after - before) // 2
    return before, after, np.where(has, day, nat)
