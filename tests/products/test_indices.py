"""Spectral indices, classes and composites on tiny literal arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from nampo.products import classes, composite, indices
from nampo.products.variables import CLASSES, COMPOSITE_BANDS, INDICES
from nampo.scenario.model import LandCover
from nampo.scenario.spectra import BAND_INDEX, class_table

NAME = {v: k for k, v in CLASSES.items()}


def spectrum(cover: LandCover, green: float = 1.0) -> xr.Dataset:
    r = class_table(green)[cover.code]
    return xr.Dataset(
        {
            b: xr.DataArray(np.array([[r[BAND_INDEX[b]]]], "f4"), dims=("y", "x"))
            for b in COMPOSITE_BANDS
        }
    )


def classify(ds: xr.Dataset) -> str:
    return CLASSES[int(composite.with_indices(ds)["landcover"][0, 0])]


def test_classes_of_the_spectral_library():
    # The renderer's library spectra land in the classes an analyst expects.
    expected = {
        LandCover.water: "water",
        LandCover.vegetation: "vegetation",
        LandCover.bare: "bare",
        LandCover.paved: "built",
        LandCover.roof: "built",
        LandCover.pier: "built",
        LandCover.containers: "built",
        LandCover.tank: "built",
        LandCover.coal: "dark",
        LandCover.ice: "ice",
    }
    for cover, name in expected.items():
        assert classify(spectrum(cover)) == name, cover


def test_dark_index_separates_coal_from_water_and_shadowed_vegetation():
    coal = float(indices.dark(spectrum(LandCover.coal))[0, 0])
    water = float(indices.dark(spectrum(LandCover.water))[0, 0])
    shade = spectrum(LandCover.vegetation) * 0.25  # vegetation in deep shadow: dark, but green
    assert coal > 0.35 > max(water, float(indices.dark(shade)[0, 0]))


def test_indices_are_float32_and_nan_safe():
    ds = spectrum(LandCover.water)
    zero = ds * 0
    out = indices.all_indices(zero)
    assert all(out[i].dtype == np.float32 for i in INDICES)
    assert np.isnan(out["ndvi"]).all()
    assert int(classes.landcover(zero.merge(out))[0, 0]) == 0


def test_median_composite_ignores_cloudy_observations_and_counts():
    t = 5
    vals = np.array([0.1, 0.12, 0.9, 0.11, np.nan], "f4")  # 0.9 is a cloud the mask caught
    clear = np.array([True, True, False, True, False])
    seen = np.array([True, True, True, True, False])
    refl = xr.Dataset(
        {
            b: xr.DataArray(vals.reshape(t, 1, 1).copy(), dims=("time", "y", "x"))
            for b in COMPOSITE_BANDS
        }
    )
    valid = xr.DataArray(clear.reshape(t, 1, 1), dims=("time", "y", "x"))
    observed = xr.DataArray(seen.reshape(t, 1, 1), dims=("time", "y", "x"))
    comp = composite.median_composite(refl, valid, observed)
    assert float(comp["red"][0, 0]) == np.float32(0.11)
    assert int(comp["clear_count"][0, 0]) == 3 and int(comp["obs_count"][0, 0]) == 4
    assert comp["red"].dtype == np.float32


def test_change_metrics_against_previous_and_baseline():
    before = composite.with_indices(spectrum(LandCover.water))
    after = composite.with_indices(spectrum(LandCover.bare))
    same = composite.change_metrics(after, after, after)
    assert float(same["cva_prev"][0, 0]) == 0 and float(same["dndvi_base"][0, 0]) == 0
    drained = composite.change_metrics(after, before, before)
    assert float(drained["cva_prev"][0, 0]) > 0.2
    assert float(drained["dmndwi_base"][0, 0]) < -1.0  # water (MNDWI ~0.86) to soil (~-0.4)


def test_moist_soil_is_bare_and_grey_surfaces_are_built():
    # Moist soil (the library's alternate bare end-member) has NDBI 0.06, under any NDBI
    # threshold that keeps towns out; its red-over-blue colour still says soil.
    from nampo.scenario.spectra import alternate_tables

    alt = alternate_tables()[0][LandCover.bare.code]
    moist = xr.Dataset(
        {
            b: xr.DataArray(np.array([[alt[BAND_INDEX[b]]]], "f4"), dims=("y", "x"))
            for b in COMPOSITE_BANDS
        }
    )
    assert float(indices.ndbi(moist)[0, 0]) < 0.11
    assert classify(moist) == "bare"
    grey = spectrum(LandCover.paved)
    grey["swir16"] = grey["nir"] * 1.3  # a SWIR-bright but grey surface: NDBI 0.13
    assert float(indices.ndbi(grey)[0, 0]) > 0.11
    assert classify(grey) == "built"


def test_dormant_vegetation_stays_vegetation_where_the_baseline_was_green():
    dormant = spectrum(LandCover.vegetation, green=0.0)
    ds = composite.with_indices(dormant)
    assert 0.2 < float(ds["ndvi"][0, 0]) < 0.4
    green_peak = xr.full_like(ds["ndvi"], 0.75)
    never_green = xr.full_like(ds["ndvi"], 0.15)
    assert CLASSES[int(classes.landcover(ds, green_peak)[0, 0])] == "vegetation"
    assert CLASSES[int(classes.landcover(ds, never_green)[0, 0])] == "bare"
    assert CLASSES[int(classes.landcover(ds)[0, 0])] == "bare"
    # Cleared: the same green-in-baseline pixel as bare soil is bare, not vegetation.
    cleared = composite.with_indices(spectrum(LandCover.bare))
    assert CLASSES[int(classes.landcover(cleared, green_peak)[0, 0])] == "bare"
    # A new roof on former grassland is built, whatever its NDVI.
    roof = composite.with_indices(spectrum(LandCover.roof))
    assert CLASSES[int(classes.landcover(roof, green_peak)[0, 0])] == "built"


def test_ndvi_peak_is_a_high_quantile_of_clear_observations():
    t = 5
    veg = class_table(1.0)[LandCover.vegetation.code]
    dormant = class_table(0.0)[LandCover.vegetation.code]
    rows = [dormant, dormant, veg, dormant, veg]
    refl = xr.Dataset(
        {
            b: xr.DataArray(
                np.array([r[BAND_INDEX[b]] for r in rows], "f4").reshape(t, 1, 1),
                dims=("time", "y", "x"),
            )
            for b in COMPOSITE_BANDS
        }
    )
    valid = xr.DataArray(np.array([1, 1, 1, 1, 0], bool).reshape(t, 1, 1), dims=refl["red"].dims)
    peak = float(indices.ndvi_peak(refl, valid)[0, 0])
    assert peak > classes.GREEN_PEAK  # one clear summer observation in four is enough
    none = indices.ndvi_peak(refl, valid & False)
    assert np.isnan(none[0, 0])


def _bands(values: list[float | None]) -> xr.Dataset:
    a = np.array([np.nan if v is None else v for v in values], "f4").reshape(1, -1)
    return xr.Dataset({b: xr.DataArray(a.copy(), dims=("y", "x")) for b in COMPOSITE_BANDS})


def test_carry_forward_keeps_the_latest_clear_month_for_a_while():
    from nampo.products.variables import LAST_CLEAR_MONTHS

    last = composite.carry_forward(_bands([0.1, None]), None)
    assert last["last_age"].values.tolist() == [[0, 255]]
    months = [_bands([None, None])] * (LAST_CLEAR_MONTHS - 1)
    for month in months:
        last = composite.carry_forward(month, last)
    # LAST_CLEAR_MONTHS - 1 cloudy months later the clear month is still carried...
    assert last["last_age"].values.tolist() == [[LAST_CLEAR_MONTHS - 1, 255]]
    assert float(last["last_red"][0, 0]) == np.float32(0.1)
    # ...and compared with: the change made in the gap shows in cva_prev.
    now = composite.with_indices(_bands([0.3, 0.2]))
    metrics = composite.change_metrics(
        now, composite.carried_composite(last), composite.with_indices(_bands([0.1, 0.1]))
    )
    assert float(metrics["cva_prev"][0, 0]) > 0.4 and np.isnan(metrics["cva_prev"][0, 1])
    # One month more and it is too old.
    last = composite.carry_forward(_bands([None, 0.2]), last)
    assert last["last_age"].values.tolist() == [[255, 0]]
    assert np.isnan(last["last_red"][0, 0]) and float(last["last_red"][0, 1]) == np.float32(0.2)


@pytest.mark.parametrize("times", [0, 1, 2, 3, 5, 17, 36, 71])
@pytest.mark.parametrize("q", [0.9, 0.5, 0.1, 1.0])
def test_nanquantile_equals_numpy_bit_for_bit(times, q):
    rng = np.random.default_rng(times)
    values = (rng.random((30, 40, times)) * 1.8 - 0.9).astype("f4")
    values[rng.random(values.shape) < rng.random((30, 40, 1))] = np.nan  # 0..all clear
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN
        expected = (
            np.nanquantile(values, q, axis=-1).astype("f4")
            if times
            else np.full((30, 40), np.nan, "f4")
        )
    got = indices.nanquantile_last(values, q)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected, equal_nan=True)
