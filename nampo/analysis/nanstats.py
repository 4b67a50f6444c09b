"""NaN-aware statistics for code that runs on Dask's threads: numpy warns on a slice with
no value ("All-NaN slice encountered"), and ``warnings.catch_warnings`` cannot hold that
back safely there (it swaps the process's warning filters, not the thread's)."""

from __future__ import annotations

import numpy as np

__all__ = ["nanmedian"]


def nanmedian(x: np.ndarray, axis: int) -> np.ndarray:
    """``numpy.nanmedian(x, axis)``, NaN where the slice holds no value, without numpy's
    warning: the median is taken over the slices that hold a value only.

    Examples
    --------
    >>> nanmedian(np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]]), axis=1)
    array([ 2., nan])
    """
    x = np.asarray(x)
    last = np.moveaxis(x, axis, -1)
    has = ~np.isnan(last).all(axis=-1)
    out = np.full(has.shape, np.nan, x.dtype if x.dtype.kind == "f" else "float64")
    if has.any():
        out[has] = np.nanmedian(last[has], axis=-1)
    return out
