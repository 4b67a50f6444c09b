"""Veils are not change (rule 1 of change dating, ``veils.py``): months under a large
patch of haze the cloud mask missed are gaps; a large brightening that lasts is still a
change, dated once a month after it confirms it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nampo.analysis.dating import TYPE_CODES, ChangeParams, detect
from nampo.analysis.dating.veils import veiled
from nampo.products.classes import BUILT, VEGETATION, WATER

from .test_dating import SPECTRA

SIDE = 30
"""A 30 x 30 tile: 900 pixels, 9 ha, larger than a veil's smallest patch (4 ha)."""


def tile(months: int, start: str = "2016-06-01"):
    """(landcover, bands, month_of_year) of a tile: water in its top third, fields below,
    with a monthly composite's noise. Fields are green all year (no seasons here)."""
    lc = np.full((months, SIDE, SIDE), VEGETATION, "uint8")
    lc[:, : SIDE // 3] = WATER
    bands = np.stack([np.array([SPECTRA[c] for c in row], "float32") for row in lc[0]])
    bands = np.broadcast_to(np.moveaxis(bands, -1, 0)[:, None], (6, months, SIDE, SIDE)).copy()
    bands += np.random.default_rng(0).normal(0, 0.002, bands.shape).astype("float32")
    moy = pd.date_range(start, periods=months, freq="MS").month.values
    return lc, bands, moy


HAZE = (slice(None), slice(0, 20))
"""Where the haze lies: the western two thirds of the tile (600 pixels, 6 ha). The rest
stays clear, so the tile's level (rule 9) does not take the haze out."""


def haze(lc, bands, months: list[int]):
    """Thin haze over :data:`HAZE` in `months`: every band brighter, blue most (as
    scattering does), and the fields under it read as built."""
    lift = np.array([0.09, 0.07, 0.06, 0.03, 0.02, 0.015], "float32")[:, None, None]
    for m in months:
        bands[(slice(None), m, *HAZE)] += lift
        hazy = lc[m][HAZE]
        hazy[hazy == VEGETATION] = BUILT


def test_two_hazy_months_ending_a_series_make_no_change():
    """The fields of most of the tile read as built in the series' last two months, under
    haze: without the veil test that is a lasting change of several hectares (the issue 18
    false events of Nampo at seed 1); with it, those months are gaps."""
    lc, bands, moy = tile(14)
    haze(lc, bands, [12, 13])
    assert (detect(lc, bands, moy, ChangeParams(veil_min_px=0))["type"] > 0).sum() == 400
    assert veiled(lc, bands[0]).sum(axis=(1, 2)).tolist() == [0] * 12 + [600] * 2
    assert (detect(lc, bands, moy)["type"] == 0).all()


def test_a_hazy_month_inside_a_state_is_a_gap():
    lc, bands, moy = tile(14)
    haze(lc, bands, [6])
    v = veiled(lc, bands[0])
    assert v[6][HAZE].all() and v.sum() == 600
    assert (detect(lc, bands, moy)["type"] == 0).all()


def test_a_small_brightening_is_never_a_veil():
    """A new 30 x 10 quay (3 ha) built on the water: smaller than a veil, so dated as soon
    as two months show it, as before the veil test."""
    lc, bands, moy = tile(14)
    lc[12:, :10] = BUILT
    bands[:, 12:, :10] = np.array(SPECTRA[BUILT], "float32")[:, None, None, None]
    assert not veiled(lc, bands[0]).any()
    out = detect(lc, bands, moy)
    assert (out["type"][:10] == TYPE_CODES["reclamation"]).all()
    assert (out["first_after"][:10] == 12).all()


def test_a_large_new_quay_is_dated_once_the_months_after_confirm_it():
    """Water turned into 6 ha of quay: brighter in blue over a veil's area. While every
    month of it is still a rise over the months before (the median of three), it is not
    yet a change (haze would look the same); once a month is steady at the new level, it
    is, dated to its first month."""
    lc, bands, moy = tile(16)
    quay = np.zeros((SIDE, SIDE), bool)
    quay[: 2 * SIDE // 3] = True
    lc[:, quay] = WATER
    bands[:, :, quay] = np.array(SPECTRA[WATER], "float32")[:, None, None]
    lc[13:, quay] = BUILT
    bands[:, 13:, quay] = np.array(SPECTRA[BUILT], "float32")[:, None, None]

    pending = detect(lc[:15], bands[:, :15], moy[:15])  # months 13-14 show the quay
    assert (pending["type"][quay] == 0).all()
    confirmed = detect(lc, bands, moy)  # month 15 is steady
    assert (confirmed["type"][quay] == TYPE_CODES["reclamation"]).all()
    assert (confirmed["first_after"][quay] == 13).all()
    assert (confirmed["type"][~quay] == 0).all()
