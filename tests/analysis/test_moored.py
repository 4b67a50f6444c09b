"""Moored ships are traffic, not ground: the months in which ships lay on a berth pixel in
most of the scenes read are gaps for change dating."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from nampo.analysis.activity import ActivityParams
from nampo.analysis.activity.moored import moored_months, without_moored_ships
from nampo.analysis.dating import RECLAMATION, detect
from nampo.products.classes import BUILT, WATER
from tests.analysis.test_dating import SPECTRA

SHIP = [40, 3, 2, 4, 9]  # pixels, row0, col0, row1, col1 (inclusive, site grid)
SHAPE = (10, 12)
MAY = np.array(["2021-05-01"], "datetime64[ns]")


def doc(month: str, scenes: list[tuple[int, list]], berth_px: int = 30) -> dict:
    """One unit's activity: (berth pixels clear, ships) per scene."""
    return {
        "month": month,
        "facilities": {"dock": {"berth_px": berth_px}},
        "scenes": [
            {
                "date": f"{month}-{k + 1:02d}",
                "facilities": {"dock": {"berth_clear": clear, "objects": objects}},
            }
            for k, (clear, objects) in enumerate(scenes)
        ],  # fmt: skip
    }


def test_a_ship_in_half_the_scenes_read_hides_the_ground():
    scenes = [(30, [SHIP]), (30, [SHIP]), (30, []), (30, [])]
    half = moored_months([doc("2021-05", scenes)], MAY, SHAPE)
    assert half[0, 3, 5] and half[0, 4, 9]
    # the box grown by a pixel (the blur of the hull, the shrunk berth), no further
    assert half[0, 2, 1] and half[0, 5, 10] and not half[0, 6, 5] and not half[0, 3, 11]
    once = moored_months([doc("2021-05", [(30, [SHIP]), (30, []), (30, []), (30, [])])], MAY, SHAPE)
    assert not once.any()


def test_only_scenes_whose_berths_were_read_count():
    # two scenes under cloud at the berths (under 90 % of them clear): not "no ship"
    scenes = [(30, [SHIP]), (30, []), (10, []), (0, [])]
    assert moored_months([doc("2021-05", scenes)], MAY, SHAPE)[0, 3, 5]
    # a month the series does not hold, and an object too large for a ship, are left out
    assert not moored_months([doc("2021-06", scenes)], MAY, SHAPE).any()
    haze = [ActivityParams().max_ship_px + 1, 0, 0, 9, 11]
    assert not moored_months([doc("2021-05", [(30, [haze])] * 3)], MAY, SHAPE).any()


def test_a_busy_berth_is_not_a_new_pier():
    """A berth pixel whose months read built when ships lay there in most scenes (the
    median composite shows the ship): a "reclamation" without the ships' months, none with
    them as gaps; a pier built there (no ship read on it) is still one."""
    months = pd.date_range("2021-02-01", periods=9, freq="MS")
    classes = [WATER] * 4 + [BUILT] * 5
    shipped = [m >= 4 for m in range(9)]
    lc = np.zeros((9, *SHAPE), "uint8")
    lc[:] = np.array(classes, "uint8")[:, None, None]
    ds = xr.Dataset(
        {"landcover": (("time", "y", "x"), lc)},
        coords={"time": months.values, "y": np.arange(SHAPE[0]), "x": np.arange(SHAPE[1])},
    )
    docs = [
        doc(f"{t:%Y-%m}", [(30, [SHIP] if s else []), (30, [SHIP] if s else []), (30, [])])
        for t, s in zip(months, shipped, strict=True)
    ]
    out = without_moored_ships(ds.chunk({"y": 5, "x": 6}), docs)
    assert out["landcover"].dtype == np.uint8 and out["landcover"].chunks
    masked = out["landcover"].values
    bands = np.array([SPECTRA[c] for c in classes], "float32").T
    bands = np.broadcast_to(bands[:, :, None, None], (6, 9, *SHAPE)).copy()
    moy = months.month.values
    assert detect(lc, bands, moy)["type"][3, 5] == RECLAMATION
    dated = detect(masked, bands, moy)
    assert dated["type"][3, 5] == 0  # under the ships: the months are gaps
    assert dated["type"][8, 5] == RECLAMATION  # away from them: a new pier
    assert (masked[:4] == WATER).all() and (masked[4:, 3, 5] == 0).all()


def test_without_activity_the_classes_are_as_stored():
    ds = xr.Dataset({"landcover": (("time", "y", "x"), np.ones((1, *SHAPE), "uint8"))},
                    coords={"time": MAY})  # fmt: skip
    assert without_moored_ships(ds, []) is ds
    assert without_moored_ships(ds, [doc("2021-05", [(30, [])])]) is ds
