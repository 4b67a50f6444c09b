"""The NaN-median of the dating code: numpy's figures, without numpy's warning on slices
with no value (the dating runs on Dask's threads, where the warning cannot be held back)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nampo.analysis.nanstats import nanmedian


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nanmedian_is_numpys_and_silent_on_empty_slices(axis, dtype):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 6, 5)).astype(dtype)
    x[rng.random(x.shape) < 0.5] = np.nan
    x[1, :, 2] = np.nan  # slices with no value along each axis
    x[:, 3, :] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        got = nanmedian(x, axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(x, axis=axis)
    assert np.isnan(expected).any()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)  # NaN where numpy's is NaN, else equal
