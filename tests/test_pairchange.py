"""Before/after change on two composites: a new building is change, what moves the whole
scene (season, haze, gain) and what is natural (phenology, water, greening) is not."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo.pairchange import BRIGHTENING, VEGETATION_LOSS, WATER_TO_LAND, PairParams, pair_change
from nampo.products import COMPOSITE_BANDS

# six-band reflectance (blue, green, red, nir, swir16, swir22) of surfaces
GRASS = (0.04, 0.07, 0.05, 0.35, 0.20, 0.10)
DRY_GRASS = (0.06, 0.09, 0.10, 0.25, 0.28, 0.18)
SOIL = (0.08, 0.11, 0.15, 0.22, 0.30, 0.24)
ROOF = (0.20, 0.21, 0.22, 0.26, 0.28, 0.25)
WATER = (0.06, 0.07, 0.05, 0.03, 0.01, 0.01)
MUDDY_WATER = (0.08, 0.10, 0.09, 0.05, 0.02, 0.01)
TOWN = (0.09, 0.09, 0.10, 0.17, 0.19, 0.16)

N = 120


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A town (most of the site) with a park, a river and fields, and a little noise."""
    kinds = np.zeros((N, N), "uint8")  # 0 town
    kinds[:, 90:100] = 1  # river
    kinds[10:40, 10:40] = 2  # park
    kinds[60:80, 10:40] = 3  # fields
    rng = np.random.default_rng(seed)
    return kinds, rng.normal(0, 0.01, (6, N, N))


def _ds(values: np.ndarray) -> xr.Dataset:
    y, x = np.arange(N) * -10.0, np.arange(N) * 10.0
    return xr.Dataset(
        {b: (("y", "x"), values[i].astype("float32")) for i, b in enumerate(COMPOSITE_BANDS)},
        coords={"y": y, "x": x},
    )


def _paint(kinds: np.ndarray, noise: np.ndarray, table: dict[int, tuple]) -> np.ndarray:
    out = noise.copy()
    for kind, spectrum in table.items():
        out[:, kinds == kind] += np.array(spectrum)[:, None]
    return out


def test_new_buildings_are_change_and_nature_is_not():
    kinds, noise = _scene(0)
    before = _paint(kinds, noise, {0: TOWN, 1: WATER, 2: GRASS, 3: SOIL})
    # a year later, in another season: muddy river, dry park, green fields (sown), a hazier
    # and brighter scene overall; and three new things: roofs on the fields' edge, roofs on
    # the park's corner, a yard built out into the river
    kinds2 = kinds.copy()
    kinds2[100:110, 60:75] = 4  # roofs on what was town (brightening)
    kinds2[10:18, 10:18] = 5  # roofs on the park (vegetation loss)
    kinds2[50:60, 90:100] = 6  # a yard in the river (water to land)
    after = _paint(
        kinds2,
        _scene(1)[1],
        {0: TOWN, 1: MUDDY_WATER, 2: DRY_GRASS, 3: GRASS, 4: ROOF, 5: ROOF, 6: ROOF},
    )
    after = after * 1.15 + 0.02  # season, haze and gain: the whole scene moves

    out = pair_change(_ds(before), _ds(after))
    change, kind = out["change"].values, out["type"].values
    new = kinds2 >= 4
    core = np.zeros_like(new)  # the new things less their one-pixel rim
    core[1:-1, 1:-1] = new[1:-1, 1:-1] & new[:-2, 1:-1] & new[2:, 1:-1] & new[1:-1, :-2]
    core &= np.roll(new, -1, axis=1)
    assert change[core].mean() > 0.9
    # nothing else: not the whole-scene shift, nor the river, park or fields
    far = ~ndimage_dilate(new, 2)
    assert change[far].mean() < 0.002, change[far].sum()
    assert (kind[core & (kinds2 == 4)] == BRIGHTENING).mean() > 0.9
    assert (kind[core & (kinds2 == 5)] == VEGETATION_LOSS).mean() > 0.9
    assert (kind[core & (kinds2 == 6)] == WATER_TO_LAND).mean() > 0.9

    # the same two dates without the whole-scene shift: the same change
    plain = pair_change(_ds(before), _ds((after - 0.02) / 1.15))
    assert (plain["change"].values[core]).mean() > 0.9

    # the naive threshold (raw change vector, mean + 2 std) flags the sown fields too
    naive = np.sqrt(((after - before) ** 2).sum(0))
    naive_change = naive > naive.mean() + 2 * naive.std()
    assert naive_change[far & (kinds == 3)].sum() >= 30 > change[far].sum()


def test_without_enough_valid_pixels_nothing_is_claimed():
    kinds, noise = _scene(0)
    before = _paint(kinds, noise, {0: TOWN, 1: WATER, 2: GRASS, 3: SOIL})
    after = np.full_like(before, np.nan)
    after[:, :5, :5] = before[:, :5, :5] + 0.2  # 25 pixels: too few for site statistics
    out = pair_change(_ds(before), _ds(after), PairParams())
    assert not out["change"].values.any()
    assert np.isnan(out["score"].values).all()


def ndimage_dilate(mask: np.ndarray, px: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=px)
