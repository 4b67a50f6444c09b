"""Each class's band and index medians, rendered, held against real Sentinel-2 classes.

The references (read from ``../shared/data``, never copied; see PROVENANCE.md and
oscd/README.md) and what each one is:

- Aberystwyth, Wales, 2021-05-27 (rsgislib test data, GPL-3.0): surface reflectance
  (Level-2A-like, x 1000), 10 bands, coastal sea (Cardigan Bay) and pasture. Its water
  keeps 0.02-0.03 in every band beyond the red, SWIR included: what an aerosol correction
  made for land leaves over water.
- Virginia's Eastern Shore, 2016-01-12: Level-1C (top of atmosphere) B05/B8A/B11/B12,
  shelf and bay water. In the SWIR the atmosphere adds little, so its water (B11 0.005-
  0.010) bounds surface water from above, and disagrees with Aberystwyth's by 2-3x.
- OSCD (2015-2017): Level-1C B02-B04/B08/B11 of European cities; the Garonne at Bordeaux
  and the Loire at Nantes are turbid estuaries like Nampo's Taedong.

Level-1C is brighter than surface reflectance by the path reflectance of the atmosphere,
most in the blue. Where a Level-1C reference holds a surface-reflectance median, its 5th
percentile is lowered by the path reflectance of a clear day (``PATH``); its 95th is kept
(surface water is not brighter than the same water seen through the atmosphere).
Tolerances are stated per test; a failure means the renderer must change, not the test.
"""

from __future__ import annotations

import numpy as np
import pytest

from nampo.scenario import spectra
from nampo.scenario.archive import Archive
from nampo.scenario.model import LandCover, WaterType
from tests.scenario.test_scenario_realism import (
    ABER_BANDS,
    aberystwyth,
    interior,
    ndvi,
    oscd_scenes,
    real_water_mask,
    rendered_vegetation,
    virginia,
)
from tests.scenario.test_scenario_truth import WATER, View, full_views

PATH = {"blue": 0.06, "green": 0.035, "red": 0.02, "nir": 0.01, "swir16": 0.003}
"""Path reflectance of a clear day (aerosol optical depth about 0.1-0.2 at 550 nm, sun
40-60 degrees high), Level-1C minus Level-2A over dark water, an upper bound per band."""
INDEX_PATH = 0.1
"""The same for MNDWI and NDWI of turbid water: path reflectance raises green more than
SWIR or NIR, so Level-1C water reads up to about 0.1 higher."""
TURBID_RIVERS = ("bordeaux", "nantes")
BLOCK = 5  # 50 m blocks: the scale of fields, roofs and stretches of water


def indices(b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    def nd(a, c):
        return (b[a] - b[c]) / (b[a] + b[c])

    out = {"mndwi": nd("green", "swir16")}
    if "nir" in b:
        out["ndvi"], out["ndwi"] = nd("nir", "red"), nd("green", "nir")
    return out


def aber_water() -> np.ndarray:
    a = aberystwyth()
    return interior(a["valid"] & (a["nir"] < 0.05) & (a["green"] > a["nir"]))


def aber_vegetation() -> np.ndarray:
    return interior(ndvi(aberystwyth()) > 0.6, 1)


# --------------------------------------------------------------------------------------
# Rendered pixels


@pytest.fixture(scope="module")
def views(mini_archive: Archive) -> list[View]:
    return list(full_views(mini_archive.path))


def water_scenes(views: list[View]):
    """(bands and indices, interior clear water) of each June-September scene of the mini
    archive (its water is the default, a turbid estuary)."""
    for v in views:
        if v.date.month not in (6, 7, 8, 9):
            continue
        m = interior(v.clear() & (v.cls == WATER))
        if m.sum() >= 100:
            b = {k: v.refl(k) for k in ABER_BANDS}
            yield b | indices(b), m


@pytest.fixture(scope="module")
def rendered_water(views: list[View]) -> dict[str, np.ndarray]:
    pixels: dict[str, list[np.ndarray]] = {}
    for b, m in water_scenes(views):
        for k, a in b.items():
            pixels.setdefault(k, []).append(a[m])
    return {k: np.concatenate(v) for k, v in pixels.items()}


# --------------------------------------------------------------------------------------
# Water


@pytest.mark.parametrize("key", ["blue", "green", "red", "nir", "swir16", "mndwi", "ndwi"])
def test_turbid_water_lies_within_real_turbid_estuaries(rendered_water, key: str) -> None:
    """Rendered turbid water (June-September, clear interior pixels): its median inside
    the span of the 5-95 % ranges of the Garonne and the Loire (OSCD, Level-1C), the lower
    ends lowered by the path reflectance (``PATH``, ``INDEX_PATH``)."""
    lows, highs = [], []
    for b in oscd_scenes():
        m = interior(real_water_mask(b))
        if b["name"].split()[0] not in TURBID_RIVERS or m.sum() < 200:
            continue
        values = (b | indices(b))[key][m]
        lo, hi = np.quantile(values, [0.05, 0.95])
        lows.append(lo - (PATH[key] if key in PATH else INDEX_PATH))
        highs.append(hi)
    assert len(lows) >= 2
    med = float(np.median(rendered_water[key]))
    assert min(lows) <= med <= max(highs), (key, med, min(lows), max(highs))


@pytest.mark.parametrize("key", ["swir16", "swir22"])
def test_water_swir_lies_between_the_real_waters(rendered_water, key: str) -> None:
    """Real water's SWIR depends on the processing: Aberystwyth's surface reflectance
    reads 0.013-0.031, Virginia's top of atmosphere 0.003-0.010. The rendered median
    lies inside their span (the earlier renderer's 0.006 and 0.004 sat at the bottom of
    it, below every Level-2A reference), and above Virginia's median (Sen2Cor's residual
    over water is not smaller than the atmosphere's own SWIR)."""
    aber, virg = aberystwyth(), virginia()
    vw = interior(virg["valid"] & (virg["nir08"] < 0.05))
    real_a, real_v = aber[key][aber_water()], virg[key][vw]
    lo = min(np.quantile(real_a, 0.05), np.quantile(real_v, 0.05))
    hi = max(np.quantile(real_a, 0.95), np.quantile(real_v, 0.95))
    med = float(np.median(rendered_water[key]))
    assert max(lo, float(np.median(real_v))) <= med <= hi, (key, med, lo, hi)


def mixed(main: np.ndarray, alt: np.ndarray, base: float) -> dict[str, np.ndarray]:
    refl = (1 - base) * main + base * alt
    b = {k: np.float32(refl[spectra.BAND_INDEX[k]]) for k in ABER_BANDS}
    return b | indices(b)


@pytest.mark.parametrize("key", [*ABER_BANDS, "ndvi", "mndwi", "ndwi"])
def test_coastal_water_lies_within_real_coastal_sea(key: str) -> None:
    """The coastal water type (its spectrum at its typical share of its alternate) lies
    inside the 5-95 % range of Aberystwyth's sea in every band and index, with no
    widening: both are surface reflectance of a coastal sea in the same processing sense
    (the SWIR residual included)."""
    main, alt = spectra.water_tables()
    i = spectra.WATER_TYPES.index(WaterType.coastal)
    _, base, _ = spectra.alternate_tables()
    mine = float(mixed(main[i], alt[i], float(base[LandCover.water.code]))[key])
    a = aberystwyth()
    real = (a | indices(a))[key][aber_water()]
    lo, hi = np.quantile(real, [0.05, 0.95])
    assert lo <= mine <= hi, (key, mine, lo, hi)


def test_water_types_are_ordered_as_real_waters_are() -> None:
    """Sediment brightens water in the green and red: turbid > coastal > open sea in the
    red; clear sea darkest in the NIR (the coastal type's NIR holds Aberystwyth's
    correction residual, so it need not be below the turbid type's); clear sea is
    bluest (blue above green), turbid water greenest."""
    main, _ = spectra.water_tables()
    turbid, coastal, sea = (main[spectra.WATER_TYPES.index(w)] for w in WaterType)
    red, nir = spectra.BAND_INDEX["red"], spectra.BAND_INDEX["nir"]
    assert turbid[red] > coastal[red] > sea[red]
    assert min(turbid[nir], coastal[nir]) > sea[nir]
    blue, green = spectra.BAND_INDEX["blue"], spectra.BAND_INDEX["green"]
    assert sea[blue] > sea[green] and turbid[green] > turbid[blue]


# --------------------------------------------------------------------------------------
# Vegetation


@pytest.mark.parametrize("key", [*ABER_BANDS, "ndvi", "mndwi", "ndwi"])
def test_summer_vegetation_lies_within_real_pasture(views: list[View], key: str) -> None:
    """Rendered July-August vegetation (every interior pixel of the class, not only the
    green ones): its median inside the 5-95 % range of Aberystwyth's vegetation (NDVI >
    0.6, late May), no widening."""
    veg = rendered_vegetation(views, (7, 8))
    assert len(veg) >= 2
    mine = []
    for v, m in veg:
        b = {k: v.refl(k) for k in ABER_BANDS}
        mine.append((b | indices(b))[key][m])
    a = aberystwyth()
    lo, hi = np.quantile((a | indices(a))[key][aber_vegetation()], [0.05, 0.95])
    med = float(np.median(np.concatenate(mine)))
    assert lo <= med <= hi, (key, med, lo, hi)


def test_vegetation_ndvi_follows_the_season(views: list[View]) -> None:
    """Temperate vegetation: summer NDVI near real summer pasture (within 0.05 of
    Aberystwyth's median), winter NDVI of dormant cover (0.15-0.45), spring and autumn in
    between."""

    def median_ndvi(months) -> float:
        vals = [
            ndvi({k: v.refl(k) for k in ("red", "nir")})[m]
            for v, m in rendered_vegetation(views, months)
        ]
        return float(np.median(np.concatenate(vals)))

    real = float(np.median(ndvi(aberystwyth())[aber_vegetation()]))
    summer, winter = median_ndvi((7, 8)), median_ndvi((12, 1, 2))
    spring = median_ndvi((4, 5))
    assert abs(summer - real) < 0.05, (summer, real)
    assert 0.15 < winter < 0.45, winter
    assert winter < spring < summer, (winter, spring, summer)


# --------------------------------------------------------------------------------------
# Variation between parcels


def block_spread(a: np.ndarray, mask: np.ndarray, relative: bool) -> float:
    """Standard deviation of the means of 50 m blocks wholly inside `mask` (divided by
    their median if `relative`: turbid water is twice as bright as the coastal sea)."""
    h, w = a.shape[0] // BLOCK, a.shape[1] // BLOCK
    blocks = np.where(mask, a, np.nan)[: h * BLOCK, : w * BLOCK].reshape(h, BLOCK, w, BLOCK)
    full = np.isfinite(blocks).all(axis=(1, 3))
    means = blocks.transpose(0, 2, 1, 3)[full].mean(axis=(1, 2))
    if means.size < 8:
        return float("nan")
    return float(means.std() / abs(np.median(means))) if relative else float(means.std())


@pytest.mark.parametrize(
    ("cls", "key"),
    [
        ("water", "red"),
        ("water", "nir"),
        ("vegetation", "nir"),
        ("vegetation", "red"),
        ("vegetation", "ndvi"),
    ],
)
def test_parcels_differ_as_much_as_real_ones(views: list[View], cls: str, key: str) -> None:
    """Fields and stretches of water differ from one another: the spread of 50 m block
    means within a class, in one scene (median over scenes; relative to the median for
    bands, absolute for NDVI), within a factor of 2 of Aberystwyth's (the earlier
    renderer: water red 0.3x, vegetation NIR 0.5x)."""
    a = aberystwyth()
    real_mask = aber_water() if cls == "water" else aber_vegetation()
    rel = key != "ndvi"
    real = block_spread((a | indices(a))[key], real_mask, rel)
    if cls == "water":
        mine = [block_spread(b[key], m, rel) for b, m in water_scenes(views)]
    else:
        mine = []
        for v, m in rendered_vegetation(views, (7, 8)):
            b = {k: v.refl(k) for k in ("red", "nir", "green", "swir16")}
            mine.append(block_spread((b | indices(b))[key], m, rel))
    mine = [s for s in mine if np.isfinite(s)]
    assert len(mine) >= 2
    ratio = float(np.median(mine)) / real
    assert 0.5 < ratio < 2, (cls, key, np.median(mine), real)
