"""Spectral indices, classes and composites on tiny literal arrays."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo import composite, indices
from nampo.products import CLASSES, COMPOSITE_BANDS, INDICES
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
    assert int(indices.landcover(zero.merge(out))[0, 0]) == 0


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
