"""The spectra of one day: every row of the renderer's spectral tables (classes, water
types, groups of fields; ``spectra.ROW_*``) with the day's phenology, turbidity and
day-to-day variation."""

from __future__ import annotations

import numpy as np

from nampo.scenario import spectra as sp
from nampo.scenario.layout import Layout
from nampo.scenario.model import LandCover, Scenario
from nampo.scenario.schedule import Datatake

__all__ = ["day_tables"]

WATER = LandCover.water.code
VEGETATION = LandCover.vegetation.code


def day_tables(
    sc: Scenario, lay: Layout, take: Datatake, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance of each row of the spectral tables (classes, water types, groups of
    fields; ``spectra.ROW_*``) and band on the day of `take` (phenology, turbidity and a
    day-to-day variation), for both end-members."""
    alt_classes, _, _ = sp.alternate_tables()
    doy = take.date.timetuple().tm_yday + rng.normal(0, 4)
    phenology = sc.climate.phenology
    table = np.zeros((sp.N_ROWS, len(sp.BANDS)), "f4")
    alt_table = np.zeros_like(table)
    table[: sp.N_CLASSES] = sp.class_table(sp.greenness(doy, phenology))
    alt_table[: sp.N_CLASSES] = alt_classes
    water, water_alt = sp.water_tables()
    turbidity = float(rng.lognormal(0, 0.18))  # sediment load of the water varies by day
    rows = slice(sp.ROW_WATER, sp.ROW_VEGETATION)
    table[rows], alt_table[rows] = water * turbidity, water_alt * turbidity
    for i, (late, peak) in enumerate(lay.group_phenology):
        state = peak * sp.greenness(doy - late, phenology)
        table[sp.ROW_VEGETATION + i] = sp.vegetation_spectrum(state)
        alt_table[sp.ROW_VEGETATION + i] = alt_classes[VEGETATION]
    # Day-to-day variation of each class (moisture, sun angle), on both end-members; the
    # water types and groups of fields share their class's.
    day_factor = 1 + rng.normal(0, 0.03, size=(sp.N_CLASSES, 1))
    of_row = np.concatenate(
        [
            np.arange(sp.N_CLASSES),
            np.full(len(sp.WATER_TYPES), WATER),
            np.full(sp.VEGETATION_GROUPS, VEGETATION),
        ]
    )
    table *= day_factor[of_row].astype("f4")
    alt_table *= day_factor[of_row].astype("f4")
    return table, alt_table
