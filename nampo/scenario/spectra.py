"""Spectral library of the renderer: Sentinel-2 bands, surface reflectance of each land
cover, vegetation phenology, clouds, and the Scene Classification (SCL) codes.

Values are surface reflectance (0..1) at the centre wavelengths of Sentinel-2 MSI bands.
They follow published libraries and measurements: USGS Spectral Library v7 and ECOSTRESS
(concrete, asphalt, metal roofs, soils, coal, snow/ice), Sentinel-2 L2A statistics of
turbid coastal water (Yellow Sea / Han and Taedong estuaries: red 0.04-0.08, NIR 0.01-0.03)
and of temperate grassland/cropland (summer NDVI 0.7-0.85, winter 0.2-0.35). Each class has
a texture amplitude: real surfaces vary within a class, which is what makes thresholds hard.
The tests in ``tests/scenario/test_scenario_realism.py`` hold these against real Sentinel-2 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nampo.scenario.model import CLASS_CODES, LandCover, WaterType

__all__ = [
    "WATER_TYPES",
    "VEGETATION_GROUPS",
    "ROW_WATER",
    "ROW_VEGETATION",
    "N_ROWS",
    "PARCEL",
    "PARCEL_SHARE",
    "water_tables",
    "Band",
    "BANDS",
    "BAND_INDEX",
    "TEXTURE",
    "CLOUD",
    "CIRRUS",
    "SHADOW_KEEP",
    "N_CLASSES",
    "class_table",
    "alternate_tables",
    "texture_table",
    "greenness",
    "SCL_NO_DATA",
    "SCL_SATURATED",
    "SCL_DARK",
    "SCL_CLOUD_SHADOW",
    "SCL_VEGETATION",
    "SCL_NOT_VEGETATED",
    "SCL_WATER",
    "SCL_UNCLASSIFIED",
    "SCL_CLOUD_MEDIUM",
    "SCL_CLOUD_HIGH",
    "SCL_CIRRUS",
    "SCL_SNOW_ICE",
    "SCL_PERCENT_KEYS",
]


@dataclass(frozen=True)
class Band:
    key: str
    """Earth Search v1 asset key."""
    name: str
    """ESA band name (also the COG's file stem)."""
    wavelength_nm: float
    resolution: int
    """Native resolution in metres."""


BANDS: tuple[Band, ...] = (
    Band("coastal", "B01", 443, 60),
    Band("blue", "B02", 490, 10),
    Band("green", "B03", 560, 10),
    Band("red", "B04", 665, 10),
    Band("rededge1", "B05", 705, 20),
    Band("rededge2", "B06", 740, 20),
    Band("rededge3", "B07", 783, 20),
    Band("nir", "B08", 842, 10),
    Band("nir08", "B8A", 865, 20),
    Band("nir09", "B09", 945, 60),
    Band("swir16", "B11", 1610, 20),
    Band("swir22", "B12", 2190, 20),
)
BAND_INDEX = {b.key: i for i, b in enumerate(BANDS)}

# Water by type: (main spectrum, alternate end-member), surface reflectance as Sen2Cor's
# L2A gives it. Sen2Cor's aerosol correction is made for land: over water it leaves
# 0.01-0.02 in every band from the red edge to the SWIR, where water itself absorbs all
# light (Aberystwyth's coastal sea, L2A, 27 May 2021: B05-B8A 0.034, B11 0.023, B12 0.022);
# Level-1C water over the Virginia shelf (2016-01-12) reads B11 0.007, B12 0.005 at the top
# of the atmosphere, so real water SWIR spans 0.005-0.03 with the processing. The values
# sit inside both where they can and between them in the SWIR.
# fmt: off
_WATER: dict[WaterType, tuple[list[float], list[float]]] = {
    # Turbid estuary (suspended sediment tens to hundreds of g/m3): brightest in green and
    # red, some signal left in the NIR. Garonne and Loire (OSCD, L1C, 2015-2017) read at
    # the top of the atmosphere blue 0.10-0.13, green 0.10-0.12, red 0.08-0.11, NIR
    # 0.03-0.05, B11 0.008-0.014; less the path reflectance of a clear day (about 0.05,
    # 0.03, 0.015, 0.007, 0.002) that is blue 0.05-0.08, green 0.07-0.09, red 0.07-0.09.
    WaterType.turbid_estuary: (
        [0.048, 0.055, 0.078, 0.070, 0.058, 0.033, 0.028, 0.026, 0.024, 0.014, 0.012, 0.009],
        [0.066, 0.075, 0.108, 0.104, 0.086, 0.048, 0.041, 0.038, 0.035, 0.020, 0.015, 0.011],
    ),
    # Coastal sea (Aberystwyth's Cardigan Bay): blue and green alike, red half of that.
    WaterType.coastal: (
        [0.062, 0.064, 0.066, 0.034, 0.033, 0.030, 0.029, 0.029, 0.029, 0.016, 0.016, 0.015],
        [0.056, 0.056, 0.074, 0.044, 0.040, 0.033, 0.032, 0.033, 0.032, 0.018, 0.017, 0.016],
    ),
    # Clear open sea: blue, dark from the red on (Sen2Cor's residual in the NIR and SWIR
    # smaller over dark, homogeneous water far from land). No real reference at hand.
    WaterType.open_sea: (
        [0.055, 0.050, 0.036, 0.015, 0.012, 0.009, 0.008, 0.008, 0.007, 0.004, 0.008, 0.007],
        [0.052, 0.048, 0.044, 0.022, 0.016, 0.011, 0.010, 0.009, 0.008, 0.005, 0.009, 0.008],
    ),
}
# fmt: on
WATER_TYPES: tuple[WaterType, ...] = tuple(WaterType)

# Reflectance per class, in the order of BANDS:
#        B01    B02    B03    B04    B05    B06    B07    B08    B8A    B09    B11    B12
# fmt: off
_LIBRARY: dict[LandCover, list[float]] = {
    # Water: the turbid estuary of _WATER (the default water type; others there).
    LandCover.water:      [0.048, 0.055, 0.078, 0.070, 0.058, 0.033, 0.028, 0.026, 0.024, 0.014, 0.012, 0.009],
    # Vegetation at its summer peak (the phenology below mixes it with the dormant state):
    # a closed canopy of grass or crops, NDVI 0.88 (Aberystwyth's pasture, late May 2021,
    # L2A: NIR 0.49, red 0.042, NDVI 0.83 median; the share of soil below lowers it).
    LandCover.vegetation: [0.028, 0.032, 0.068, 0.030, 0.112, 0.340, 0.435, 0.465, 0.475, 0.450, 0.205, 0.096],
    # Moist silty soil / drained mud flats.
    LandCover.bare:       [0.075, 0.090, 0.120, 0.150, 0.170, 0.185, 0.195, 0.205, 0.210, 0.210, 0.285, 0.235],
    # Concrete and asphalt yards (aged, dusty).
    LandCover.paved:      [0.105, 0.120, 0.140, 0.155, 0.165, 0.170, 0.176, 0.182, 0.185, 0.186, 0.205, 0.190],
    # Concrete piers and quays.
    LandCover.pier:       [0.140, 0.160, 0.182, 0.198, 0.208, 0.214, 0.220, 0.226, 0.228, 0.228, 0.245, 0.225],
    # Industrial roofs: painted metal and concrete.
    LandCover.roof:       [0.150, 0.168, 0.192, 0.212, 0.226, 0.236, 0.245, 0.255, 0.258, 0.255, 0.275, 0.248],
    # Coal stockpiles: near-black and flat from the visible to the SWIR (USGS coal < 0.07).
    LandCover.coal:       [0.040, 0.041, 0.043, 0.045, 0.046, 0.047, 0.048, 0.049, 0.050, 0.050, 0.055, 0.052],
    # White-painted steel roofs of oil tanks.
    LandCover.tank:       [0.360, 0.400, 0.430, 0.440, 0.440, 0.440, 0.440, 0.440, 0.440, 0.430, 0.360, 0.285],
    # Container stacks: red, blue, white and rusty boxes averaged over a pixel.
    LandCover.containers: [0.105, 0.125, 0.145, 0.168, 0.185, 0.196, 0.205, 0.214, 0.218, 0.218, 0.255, 0.220],
    # Sea ice with some snow: bright in the visible, dark in the SWIR (NDSI about 0.8).
    LandCover.ice:        [0.440, 0.460, 0.465, 0.450, 0.430, 0.410, 0.390, 0.360, 0.350, 0.300, 0.050, 0.040],
    # Ships: steel decks, hatch covers and superstructures; bright on dark water.
    LandCover.ship:       [0.110, 0.120, 0.130, 0.140, 0.148, 0.152, 0.156, 0.160, 0.160, 0.152, 0.140, 0.110],
}
# fmt: on

# Dormant vegetation (winter stubble, dry grass, leafless trees): NDVI about 0.25.
_VEGETATION_DORMANT = [0.058, 0.068, 0.092, 0.112, 0.138, 0.165, 0.180, 0.192, 0.198, 0.195, 0.270, 0.200]

# Fields differ from one another: crops and their calendars, grass cut or grazed. The
# vegetation of a scene is drawn in VEGETATION_GROUPS groups of fields, each with its own
# dates of green-up and senescence and its own peak (see ``group_greenness``).
VEGETATION_GROUPS = 6

# Rows of the renderer's spectral tables: one per class code, then one per water type,
# then one per group of fields.
ROW_WATER = max(CLASS_CODES.values()) + 1
ROW_VEGETATION = ROW_WATER + len(WaterType)
N_ROWS = ROW_VEGETATION + VEGETATION_GROUPS

# Between parcels (fields, roofs, yards, stretches of water): standard deviation of a
# brightness factor shared by all pixels of a parcel. Real 50 m blocks of one class vary
# by 15-25 % (Aberystwyth, L2A: pasture NIR 0.165, red 0.255; sea red 0.15, NIR 0.17);
# the pixel texture below adds about half of that.
PARCEL: dict[LandCover, float] = {
    LandCover.water: 0.14,
    LandCover.vegetation: 0.20,
    LandCover.bare: 0.10,
    LandCover.paved: 0.08,
    LandCover.pier: 0.05,
    LandCover.roof: 0.15,
    LandCover.containers: 0.08,
}
PARCEL_SHARE = 0.8
"""Spread of a parcel's share of its class's alternate end-member, in units of the
class's pixel spread (``_ALTERNATE``): fields of one crop differ in cover between them
as much as within (Aberystwyth's pasture: NDVI of 50 m blocks sd 0.048)."""

# Within-class spectral variety: each class mixes, pixel by pixel, with an alternate
# end-member (sparse canopy showing soil, moist dark soil, asphalt among concrete, painted
# roofs, more turbid water...) by a share drawn from a smooth static field. A single
# multiplicative texture would keep every band ratio (NDVI...) constant within a class,
# which real imagery does not (real summer NDVI of pasture spans about 0.09 between its
# quartiles). (base share, spread of the share) per class:
# fmt: off
_ALTERNATE: dict[LandCover, tuple[list[float], float, float]] = {
    LandCover.water:      (_WATER[WaterType.turbid_estuary][1], 0.3, 0.12),
    LandCover.vegetation: ([0.075, 0.090, 0.120, 0.150, 0.170, 0.185, 0.195, 0.205, 0.210, 0.210, 0.285, 0.235], 0.07, 0.08),
    LandCover.bare:       ([0.050, 0.060, 0.080, 0.098, 0.110, 0.120, 0.127, 0.133, 0.136, 0.136, 0.150, 0.115], 0.3, 0.25),
    LandCover.paved:      ([0.060, 0.066, 0.072, 0.078, 0.082, 0.085, 0.088, 0.091, 0.093, 0.094, 0.105, 0.098], 0.3, 0.2),
    LandCover.pier:       ([0.105, 0.120, 0.140, 0.155, 0.165, 0.170, 0.176, 0.182, 0.185, 0.186, 0.205, 0.190], 0.2, 0.15),
    LandCover.roof:       ([0.090, 0.125, 0.110, 0.090, 0.100, 0.120, 0.140, 0.160, 0.165, 0.165, 0.200, 0.170], 0.3, 0.3),
    LandCover.coal:       ([0.060, 0.065, 0.070, 0.074, 0.077, 0.079, 0.081, 0.083, 0.084, 0.084, 0.095, 0.088], 0.05, 0.05),
    LandCover.containers: ([0.150, 0.168, 0.192, 0.212, 0.226, 0.236, 0.245, 0.255, 0.258, 0.255, 0.275, 0.248], 0.3, 0.3),
}
# fmt: on

# Relative within-class variation (standard deviation of a multiplicative texture).
TEXTURE: dict[LandCover, float] = {
    LandCover.water: 0.015,
    LandCover.vegetation: 0.12,
    LandCover.bare: 0.10,
    LandCover.paved: 0.08,
    LandCover.pier: 0.06,
    LandCover.roof: 0.18,
    LandCover.coal: 0.10,
    LandCover.tank: 0.05,
    LandCover.containers: 0.25,
    LandCover.ice: 0.12,
    LandCover.ship: 0.20,
}

# Thick cloud (optically thick water cloud) and thin cirrus (added to the signal).
CLOUD = np.array([0.520, 0.520, 0.515, 0.505, 0.505, 0.505, 0.500, 0.500, 0.495, 0.440, 0.370, 0.240], "f4")
CIRRUS = np.array([0.060, 0.058, 0.056, 0.054, 0.054, 0.054, 0.053, 0.052, 0.052, 0.050, 0.045, 0.035], "f4")
# Share of ground reflectance left in a cloud shadow (diffuse skylight, richer in blue).
SHADOW_KEEP = np.array([0.50, 0.46, 0.40, 0.36, 0.34, 0.32, 0.31, 0.30, 0.30, 0.30, 0.27, 0.26], "f4")

N_CLASSES = max(CLASS_CODES.values()) + 1


def class_table(vegetation_green: float) -> np.ndarray:
    """Reflectance table ``(n_classes, n_bands)`` indexed by class code.

    ``vegetation_green`` in [0, 1] is the phenological state: 0 dormant, 1 summer peak.
    """
    table = np.zeros((N_CLASSES, len(BANDS)), "f4")
    for cover, values in _LIBRARY.items():
        table[cover.code] = values
    table[LandCover.vegetation.code] = vegetation_spectrum(vegetation_green)
    return table


def water_tables() -> tuple[np.ndarray, np.ndarray]:
    """(main, alternate) spectra ``(n water types, n_bands)`` in the order of WATER_TYPES."""
    main = np.array([_WATER[w][0] for w in WATER_TYPES], "f4")
    alt = np.array([_WATER[w][1] for w in WATER_TYPES], "f4")
    return main, alt


def vegetation_spectrum(vegetation_green: float) -> np.ndarray:
    """Vegetation reflectance in each band at a phenological state in [0, 1]."""
    g = float(np.clip(vegetation_green, 0, 1))
    peak = np.array(_LIBRARY[LandCover.vegetation], "f4")
    return (g * peak + (1 - g) * np.array(_VEGETATION_DORMANT, "f4")).astype("f4")


def alternate_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alternate spectra (n_classes, n_bands), base share, spread of the share) by class
    code; classes without an alternate have share 0."""
    alt = np.zeros((N_CLASSES, len(BANDS)), "f4")
    base = np.zeros(N_CLASSES, "f4")
    spread = np.zeros(N_CLASSES, "f4")
    for cover, (values, b, a) in _ALTERNATE.items():
        alt[cover.code], base[cover.code], spread[cover.code] = values, b, a
    return alt, base, spread


def texture_table() -> np.ndarray:
    out = np.zeros(N_CLASSES, "f4")
    for cover, amp in TEXTURE.items():
        out[cover.code] = amp
    return out


def greenness(day_of_year: float, phenology: str = "temperate") -> float:
    """Vegetation state on a day of the year.

    ``temperate`` (an East Asian or European site): green-up in late April-May, peak
    July-August, senescence in October (a double logistic, as in MODIS phenology).
    ``evergreen`` (humid tropics: rain forest, oil palm, mangrove): MODIS NDVI of evergreen
    broadleaf cover stays near saturation (0.75-0.85) all year, its seasonal changes
    within the index's error (Samanta et al. 2012, Amazon 2000-2009); apparent dry-season
    dips of NDVI are mostly smoke aerosols (Kobayashi and Dye 2005), which the scenario's
    fog models, and EVI even peaks late in the dry season (Xiao et al. 2006). So the state
    stays between 0.88 and 1 (NDVI of the library's pure vegetation 0.77-0.82), a small
    annual cycle whose phase is not established (lowest in mid-July here)."""
    if phenology == "evergreen":
        return float(0.94 + 0.06 * math.cos(2 * math.pi * (day_of_year - 15) / 365))
    up = 1 / (1 + math.exp(-(day_of_year - 135) / 11))
    down = 1 / (1 + math.exp(-(day_of_year - 285) / 12))
    return float(np.clip(up - down, 0, 1))


# ESA Sen2Cor Scene Classification codes.
SCL_NO_DATA = 0
SCL_SATURATED = 1
SCL_DARK = 2
SCL_CLOUD_SHADOW = 3
SCL_VEGETATION = 4
SCL_NOT_VEGETATED = 5
SCL_WATER = 6
SCL_UNCLASSIFIED = 7
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
SCL_SNOW_ICE = 11

# Property name of each SCL class in the item's s2:*_percentage fields.
SCL_PERCENT_KEYS = {
    SCL_SATURATED: "saturated_defective",
    SCL_DARK: "dark_features",
    SCL_CLOUD_SHADOW: "cloud_shadow",
    SCL_VEGETATION: "vegetation",
    SCL_NOT_VEGETATED: "not_vegetated",
    SCL_WATER: "water",
    SCL_UNCLASSIFIED: "unclassified",
    SCL_CLOUD_MEDIUM: "medium_proba_clouds",
    SCL_CLOUD_HIGH: "high_proba_clouds",
    SCL_CIRRUS: "thin_cirrus",
    SCL_SNOW_ICE: "snow_ice",
}
