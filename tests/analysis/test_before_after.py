"""Before/after change on two composites: a new building is change, what moves the whole
scene (season, haze, gain) and what is natural (phenology, water, greening) is not."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nampo.analysis.before_after import (
    BRIGHTENING,
    FEATURES,
    VEGETATION_LOSS,
    WATER_TO_LAND,
    LinearModel,
    PairParams,
    local_mean,
    model_change,
    obscured,
    pair_change,
    pair_features,
)
from nampo.products.variables import COMPOSITE_BANDS

# six-band reflectance (blue, green, red, nir, swir16, swir22) of surfaces
GRASS = (0.04, 0.07, 0.05, 0.35, 0.20, 0.10)
DRY_GRASS = (0.06, 0.09, 0.10, 0.25, 0.28, 0.18)
SOIL = (0.08, 0.11, 0.15, 0.22, 0.30, 0.24)
ROOF = (0.20, 0.21, 0.22, 0.26, 0.28, 0.25)
WATER = (0.06, 0.07, 0.05, 0.03, 0.01, 0.01)
MUDDY_WATER = (0.08, 0.10, 0.09, 0.05, 0.02, 0.01)
TOWN = (0.09, 0.09, 0.10, 0.17, 0.19, 0.16)
CLOUD = (0.30, 0.29, 0.31, 0.36, 0.36, 0.28)  # top of atmosphere (Paris, 7 Nov 2017)
WHITE_ROOF = CLOUD  # a new white roof has a cloud's colours: size tells them apart
SITE_WORKS = (0.22, 0.21, 0.23, 0.27, 0.40, 0.26)  # bared ground: brighter in SWIR than NIR

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


def test_a_cloud_and_its_shadow_are_not_change_but_a_white_roof_and_site_works_are():
    kinds, noise = _scene(0)
    before = _paint(kinds, noise, {0: TOWN, 1: WATER, 2: GRASS, 3: SOIL})
    kinds2 = kinds.copy()
    kinds2[40:65, 45:70] = 4  # a cumulus over the town (625 px)
    kinds2[75:95, 45:70] = 5  # its shadow on the town (500 px)
    kinds2[20:26, 48:54] = 6  # a new white roof (36 px)
    kinds2[12:34, 66:88] = 7  # earthworks over 4.8 ha: bright, but brighter in SWIR
    shadow = np.array(TOWN) * np.array([0.6, 0.4, 0.25, 0.25, 0.25, 0.25])
    after = _paint(
        kinds2,
        _scene(1)[1],
        {0: TOWN, 1: WATER, 2: GRASS, 3: SOIL, 4: CLOUD, 5: shadow, 6: WHITE_ROOF, 7: SITE_WORKS},
    )
    after = after * 1.15 + 0.02  # another season: the whole scene moves

    out = pair_change(_ds(before), _ds(after))
    hidden, change = out["obscured"].values, out["change"].values
    cloud, shade, roof, works = (kinds2 == k for k in (4, 5, 6, 7))
    assert hidden[cloud].all() and hidden[shade].all()
    assert not hidden[roof].any() and not hidden[works].any()
    assert hidden[~ndimage_dilate(cloud | shade, 4)].sum() == 0
    assert not change[hidden].any() and np.isnan(out["score"].values[hidden]).all()
    assert change[roof].mean() > 0.8 and change[works].mean() > 0.8
    np.testing.assert_array_equal(obscured(before, after), hidden)

    # without the cloud test (cloud_min_px 0) the cloud is change
    blind = pair_change(_ds(before), _ds(after), PairParams(cloud_min_px=0))
    assert not blind["obscured"].values.any()
    assert blind["change"].values[cloud].mean() > 0.9

    # the features and the model see them as not observed too
    _, _, valid = pair_features(_ds(before), _ds(after))
    assert not valid[hidden].any() and valid[roof].all()


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


def _town_pair() -> tuple[xr.Dataset, xr.Dataset, np.ndarray]:
    """The first test's two dates (season, haze and gain between them) and its new things."""
    kinds, noise = _scene(0)
    before = _paint(kinds, noise, {0: TOWN, 1: WATER, 2: GRASS, 3: SOIL})
    kinds2 = kinds.copy()
    kinds2[100:110, 60:75] = 4
    kinds2[10:18, 10:18] = 5
    kinds2[50:60, 90:100] = 6
    after = _paint(
        kinds2,
        _scene(1)[1],
        {0: TOWN, 1: MUDDY_WATER, 2: DRY_GRASS, 3: GRASS, 4: ROOF, 5: ROOF, 6: ROOF},
    )
    return _ds(before), _ds(after * 1.15 + 0.02), kinds2 >= 4


def test_pair_features_are_named_site_normalised_and_blind_to_a_scene_wide_shift():
    before, after, new = _town_pair()
    names, feats, valid = pair_features(before, after)
    assert names == list(FEATURES) and feats.shape == (len(FEATURES), N, N)
    assert valid.all()
    cv = feats[names.index("cv3")]
    assert cv[new].mean() > 3 > abs(cv[~ndimage_dilate(new, 2)].mean())  # z-scores
    # the same dates without the scene-wide shift give (nearly) the same features
    raw_after = _ds((np.stack([after[b].values for b in COMPOSITE_BANDS]) - 0.02) / 1.15)
    _, plain, _ = pair_features(before, raw_after)
    assert np.abs(plain - feats).max() < 0.05
    # the river stays water (rule 3: natural), the roofs do not
    natural = feats[names.index("natural")]
    assert natural[60:90, 92:98].all() and not natural[100:110, 60:75].any()


def test_model_change_applies_a_linear_model_to_the_features():
    before, after, new = _town_pair()
    # log-odds = 2 * (rule3 - 3): the rule score three site deviations above its mean
    model = LinearModel(names=("rule3",), coef=(2.0,), intercept=-6.0)
    out = model_change(before, after, model)
    names, feats, _ = pair_features(before, after)
    expected = 2.0 * feats[names.index("rule3")] - 6.0
    assert np.allclose(out["score"].values, expected, atol=1e-5)
    change = out["change"].values
    assert (change == (expected > 0)).all()
    assert change[new].mean() > 0.5 and change[~ndimage_dilate(new, 2)].mean() < 0.002
    kind = out["type"].values
    assert (kind[change] > 0).all() and (kind[~change] == 0).all()
    assert (kind[change & new][:, None] == [WATER_TO_LAND]).any()  # the yard in the river
    # centring and scaling as fitted models store them: 4 * (rule3 - 4) / 2 = 2 rule3 - 8,
    # and a threshold of -2 gives the same decision as above
    scaled = LinearModel(("rule3",), (4.0,), 0.0, threshold=-2.0, mean=(4.0,), scale=(2.0,))
    other = model_change(before, after, scaled)
    assert np.allclose(other["score"].values, expected - 2.0, atol=1e-5)
    assert (other["change"].values == change).all()


def test_a_model_must_name_known_features_and_match_its_sizes():
    with pytest.raises(ValueError, match="unknown features"):
        LinearModel(names=("nir_ratio",), coef=(1.0,), intercept=0.0)
    with pytest.raises(ValueError, match="coef has 2 values for 1 features"):
        LinearModel(names=("cv",), coef=(1.0, 2.0), intercept=0.0)


def test_local_mean_averages_the_valid_neighbours_only():
    x = np.zeros((7, 7))
    x[3, 3] = 9.0
    x[0, :] = np.nan  # not observed: neither its value nor its place counts
    valid = np.isfinite(x)
    out = local_mean(x, 3, valid)
    assert out[3, 3] == pytest.approx(1.0) and out[2, 2] == pytest.approx(1.0)
    assert out[1, 1] == pytest.approx(0.0)  # its upper neighbours are invalid, not zeros
    assert out[5, 5] == 0.0
    x[1, 1] = 6.0
    assert local_mean(x, 3, np.isfinite(x))[0, 1] == pytest.approx(6.0 / 3)  # 3 valid near
    assert np.isnan(local_mean(x, 3, np.zeros_like(valid))).all()
