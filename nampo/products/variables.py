"""What the store holds: every product variable, its dtype, fill value, dimensions and
CF attributes. One list, read by the composite code (which fills them) and the store
(which creates them), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ALL",
    "BASELINE",
    "CLASSES",
    "COMPOSITE_BANDS",
    "INDICES",
    "LAST_CLEAR_MONTHS",
    "MONTHLY",
    "Variable",
]

COMPOSITE_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
"""Bands composited every month (10 m and 20 m bands; 20 m resampled to the 10 m grid)."""

INDICES = ("ndvi", "mndwi", "ndbi", "ndsi", "dark")
"""Spectral indices (:mod:`nampo.products.indices`)."""

LAST_CLEAR_MONTHS = 6
"""Months the latest clear observation is carried forward (this month and 5 before): the
change against the previous month (``cva_prev``...) is against the latest of them with a
clear observation of the pixel, so a change made in a cloudy gap still shows."""

CLASSES = {1: "water", 2: "vegetation", 3: "bare", 4: "built", 5: "dark", 6: "ice"}
"""Land-cover classes of the monthly class map (0 = no clear observation; the rules:
:mod:`nampo.products.classes`)."""


@dataclass(frozen=True)
class Variable:
    """One array of the store."""

    name: str
    """Its name in the store (``base_`` prefix for baseline products)."""
    dtype: str
    """numpy dtype of the stored array."""
    fill_value: float | int
    """Value of pixels without data (NaN for floats)."""
    monthly: bool = True
    """Dims (time, y, x) when True, (y, x) when False (baseline products)."""
    attrs: dict = field(default_factory=dict, compare=False)
    """CF attributes (``long_name``, ``units``, ``flag_values``...)."""

    @property
    def dims(self) -> tuple[str, ...]:
        return ("time", "y", "x") if self.monthly else ("y", "x")


def _reflectance(name: str, prefix: str = "", monthly: bool = True) -> Variable:
    what = "median of clear observations" if monthly else "baseline median"
    return Variable(
        f"{prefix}{name}",
        "float32",
        np.nan,
        monthly,
        {"long_name": f"{name} surface reflectance, {what}", "units": "1"},
    )


MONTHLY: tuple[Variable, ...] = (
    *(_reflectance(b) for b in COMPOSITE_BANDS),
    *(
        Variable(i, "float32", np.nan, True, {"long_name": f"{i} of the monthly composite"})
        for i in INDICES
    ),
    Variable(
        "clear_count", "uint8", 0, True, {"long_name": "number of clear observations in the month"}
    ),
    Variable(
        "obs_count",
        "uint8",
        0,
        True,
        {"long_name": "number of observations (any sky) in the month"},
    ),
    Variable(
        "landcover",
        "uint8",
        0,
        True,
        {
            "long_name": "land-cover class",
            "flag_values": list(CLASSES),
            "flag_meanings": " ".join(CLASSES.values()),
        },
    ),
    Variable(
        "cva_prev",
        "float32",
        np.nan,
        True,
        {"long_name": "change-vector magnitude against the previous month"},
    ),
    Variable(
        "cva_base",
        "float32",
        np.nan,
        True,
        {"long_name": "change-vector magnitude against the baseline"},
    ),
    *(
        Variable(
            f"d{i}_prev", "float32", np.nan, True, {"long_name": f"{i} minus the previous month's"}
        )
        for i in INDICES
    ),
    *(
        Variable(f"d{i}_base", "float32", np.nan, True, {"long_name": f"{i} minus the baseline's"})
        for i in INDICES
    ),
    *(
        Variable(
            f"last_{b}",
            "float32",
            np.nan,
            True,
            {
                "long_name": f"{b} surface reflectance of the latest month with a clear "
                f"observation, this one or up to {LAST_CLEAR_MONTHS - 1} before",
                "units": "1",
            },
        )
        for b in COMPOSITE_BANDS
    ),
    Variable(
        "last_age",
        "uint8",
        255,
        True,
        {
            "long_name": "months from the latest month with a clear observation to this one "
            "(0: this month; 255: none in the last months)",
        },
    ),
)
"""Per (month, pixel) products, written one (tile, month) unit at a time."""

BASELINE: tuple[Variable, ...] = (
    *(_reflectance(b, "base_", monthly=False) for b in COMPOSITE_BANDS),
    *(
        Variable(f"base_{i}", "float32", np.nan, False, {"long_name": f"{i} of the baseline"})
        for i in INDICES
    ),
    Variable(
        "base_clear_count",
        "uint16",
        0,
        False,
        {"long_name": "clear observations in the baseline period"},
    ),
    Variable("base_landcover", "uint8", 0, False, {"long_name": "baseline land-cover class"}),
    Variable(
        "base_ndvi_peak",
        "float32",
        np.nan,
        False,
        {"long_name": "ndvi of the baseline period, 90th percentile of clear observations"},
    ),
)
"""Per-pixel products of the baseline period, written one (tile, baseline) unit at a time."""

ALL = MONTHLY + BASELINE
