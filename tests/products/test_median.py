"""composite.median_composite: the median of clear observations, bit for bit that of
``numpy.nanmedian`` (the reference, outside the code under test), on tiny literal arrays
and on random ones with every count of clear observations, numpy- or Dask-backed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from nampo.products.composite import median_composite
from nampo.products.variables import COMPOSITE_BANDS


def _inputs(values: np.ndarray, valid: np.ndarray) -> tuple[xr.Dataset, xr.DataArray]:
    dims = ("time", "y", "x")
    refl = xr.Dataset(
        {b: (dims, np.where(valid, values + i, np.nan)) for i, b in enumerate(COMPOSITE_BANDS)}
    ).astype("float32")
    return refl, xr.DataArray(valid, dims=dims)


def _reference(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        return np.nanmedian(values, axis=0)


def test_tiny_literal_cases():
    nan = np.nan
    # four pixels, three dates: 3 clear, 2 clear (mean of the middle two), 1 clear, none
    values = np.array(
        [[[0.3, 0.2, nan, nan]], [[0.1, nan, 0.5, 0.4]], [[0.2, 0.4, nan, nan]]], "f4"
    )
    valid = ~np.isnan(values)
    valid[1, 0, 3] = False  # a value that is not clear (cloud) does not count
    refl, ok = _inputs(values, valid)
    got = median_composite(refl, ok, ok | ~ok)
    expected = np.array([[0.2, np.float32(0.2 + 0.4) / 2, 0.5, nan]], "f4")
    np.testing.assert_array_equal(got["blue"].values, expected)
    assert got["blue"].dtype == np.float32
    np.testing.assert_array_equal(got["clear_count"].values, [[3, 2, 1, 0]])
    np.testing.assert_array_equal(got["obs_count"].values, [[3, 3, 3, 3]])


@pytest.mark.parametrize("times", [0, 1, 2, 5, 36, 71])
def test_equals_numpy_nanmedian_bit_for_bit(times):
    rng = np.random.default_rng(times)
    values = (rng.random((times, 40, 50)) * 1.6 - 0.1).astype("f4")
    valid = rng.random((times, 40, 50)) < rng.random((1, 40, 50))  # 0..all clear per pixel
    refl, ok = _inputs(values, valid)
    got = median_composite(refl, ok, ok)
    for i, band in enumerate(COMPOSITE_BANDS):
        expected = _reference(np.where(valid, values + np.float32(i), np.nan).astype("f4"))
        assert np.array_equal(got[band].values, expected, equal_nan=True), band
    assert got["clear_count"].values.max() <= max(times, 0)


def test_dask_backed_input_gives_the_same_composite():
    rng = np.random.default_rng(7)
    values = rng.random((9, 30, 30)).astype("f4")
    valid = rng.random((9, 30, 30)) < 0.6
    refl, ok = _inputs(values, valid)
    eager = median_composite(refl, ok, ok)
    lazy = median_composite(refl.chunk({"y": 16, "x": 16}), ok.chunk({"y": 16, "x": 16}), ok)
    assert lazy["red"].chunks is not None
    xr.testing.assert_identical(lazy.compute(), eager)
