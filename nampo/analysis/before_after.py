"""Before/after change: lasting man-made change between two composites, when a period has
too few scenes for change dating (:mod:`nampo.analysis.dating` needs months of each state).

From the store's baseline composite (``base_<band>``) and one month's composite, a
per-pixel mask of the change an analyst asks about (new buildings, roads, yards, land won
from water, vegetation cleared for construction), not every spectral difference between
two dates. The method (``docs/change.md``, "Before/after change"), each rule in a sentence:

0. **A cloud is not change.** A composite without a cloud mask (Sentinel-2 L1C) may hold
   a cloud and its shadow on one date; :func:`obscured` finds them from the two dates
   (a large white blob brighter than the other date in every band; a large blob darker
   in red, NIR and SWIR and dark in NIR) and they count as not observed.

1. **Scene-wide differences are not change.** Each band of the later composite is matched
   to the earlier one over the whole site (same median and interquartile range): a
   different sun angle, season, haze or sensor gain moves every pixel alike, and is taken
   out; a change moves a few pixels against the rest.
2. **Change vector in units of the scene's variety.** The distance between the two
   composites over the six bands, each band's difference divided by that band's spread
   over the site (so that SWIR, which varies most, does not decide alone).
3. **Not man-made.** Pixels that are vegetation on both dates (NDVI above
   ``vegetation_ndvi``: crops, lawns and forest change colour with the season), water on
   both dates (MNDWI above ``water_mndwi``: turbidity, glint, tides), and pixels that
   became vegetation (greening: regrowth, a field sown) get no change.
4. **Objects, not pixels.** The score is averaged over ``smooth_px`` x ``smooth_px``
   pixels: buildings and yards cover several pixels; single-pixel differences are mostly
   misregistration and mixed edges.
5. **Unusual for this site.** A pixel changed when its score is above the site's mean
   plus ``k`` standard deviations (the same rule as the naive change-vector threshold,
   applied to a score from which 1-4 took the non-change out).

The change type says what kind of change it was, from the two dates' indices:
``vegetation_loss`` (NDVI fell from vegetation), ``water_to_land`` (MNDWI fell from
water), ``brightening`` (mean reflectance rose), ``other`` (darkening, colour change).

The parameters are the same for every site (:class:`PairParams`); nothing is learned from
labels. Everything is numpy on the site's arrays (whole-site statistics), computed by
:func:`pair_change` on two composites or :func:`store_pair_change` on a store.

A learned variant, for whoever has labelled pairs: :func:`pair_features` gives named,
site-normalised per-pixel features of the two dates (the matched, scaled band differences
and their 3/5/9-pixel means, index changes, the rule score), and :func:`model_change`
applies a fitted linear (logistic) model's coefficients to them (:class:`LinearModel`).
The library ships no coefficients; ``benchmarks/oscd.py`` fits them leave-one-city-out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import ndimage

from nampo.products.variables import COMPOSITE_BANDS

TYPES = {1: "brightening", 2: "vegetation_loss", 3: "water_to_land", 4: "other"}
"""Change types of :func:`pair_change` (0: no change)."""
BRIGHTENING, VEGETATION_LOSS, WATER_TO_LAND, OTHER = range(1, 5)


@dataclass(frozen=True)
class PairParams:
    """Parameters of before/after change (``docs/change.md`` explains each)."""

    k: float = 2.5
    """Threshold: the site's mean score plus `k` standard deviations."""
    smooth_px: int = 3
    """Side of the square the score is averaged over (3 px: 30 m at 10 m)."""
    vegetation_ndvi: float = 0.5
    """NDVI above which a pixel is vegetation (for rule 3)."""
    greening: float = 0.2
    """NDVI rise to a vegetated after state that makes a pixel 'became vegetation'."""
    water_mndwi: float = 0.2
    """MNDWI above which a pixel is water (the store's land-cover rule)."""
    cloud_min_px: int = 400
    """Smallest cloud or cloud shadow of the cloud test (:func:`obscured`), in pixels
    (400: 4 ha at 10 m); 0 turns the test off."""


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a - b) / (a + b)


def _match(after: np.ndarray, before: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`after` moved and scaled to `before`'s median and interquartile range."""
    qa = np.percentile(after[valid], [25, 50, 75])
    qb = np.percentile(before[valid], [25, 50, 75])
    spread = qa[2] - qa[0]
    gain = (qb[2] - qb[0]) / spread if spread > 0 else 1.0
    return (after - qa[1]) * gain + qb[1]


CLOUD_BLUE = 0.2
"""A cloud is brighter than this in blue (reflectance)."""
CLOUD_RISE = 0.08
"""... and brighter than the other date by more than this in every band."""
CLOUD_WHITENESS = 0.3
"""... and white: its visible bands' range over their mean is below this."""
CLOUD_NIR_SWIR = 0.75
"""... and NIR above this times SWIR 1.6 um (Fmask's basic test: bare soil and concrete,
which are brighter in SWIR than in NIR, are not clouds)."""
SHADOW_RATIO = 0.7
"""A cloud shadow is darker than the other date by this factor in red, NIR and SWIR ..."""
SHADOW_NIR = 0.08
"""... and darker than this in NIR (reflectance)."""
CLOUD_GROW_PX = 3
"""Clouds and shadows are grown by this many pixels (their hazy edges)."""


def _blobs(mask: np.ndarray, min_px: int) -> np.ndarray:
    """`mask` closed (gaps of a few pixels), only its 8-connected parts of `min_px` pixels or
    more kept, grown by CLOUD_GROW_PX."""
    closed = ndimage.binary_closing(mask, iterations=2)
    labels, n = ndimage.label(closed, structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = ndimage.sum_labels(closed, labels, index=np.arange(1, n + 1))
    keep = np.r_[False, sizes >= min_px][labels]
    return ndimage.binary_dilation(keep, iterations=CLOUD_GROW_PX)


def obscured(
    before: np.ndarray,
    after: np.ndarray,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> np.ndarray:
    """Where a cloud or a cloud shadow on either date hides the ground: (y, x) bool.

    A cloud test for composites without a cloud mask (Sentinel-2 L1C), from the two dates
    only (no thermal or cirrus band is stored). Per pixel, a cloud on one date is bright in
    blue, white in the visible, not brighter in SWIR than in NIR, and brighter than the
    other date in every band (the other date matched to it, rule 1); a shadow is darker
    than the other date in red, NIR and SWIR by a factor, dark in NIR, and not water on the
    other date (rivers darken with their load). Only blobs of
    ``params.cloud_min_px`` pixels or more count (clouds are large; a new white roof of a
    few hundred square metres passes the per-pixel test too), grown by a few pixels for
    their hazy edges. Pixels where either date has no value are never obscured.

    Parameters
    ----------
    before, after : (6, y, x) reflectance of the composite bands, NaN where not observed.
    """
    valid = np.isfinite(before).all(0) & np.isfinite(after).all(0)
    out = np.zeros(valid.shape, bool)
    if params.cloud_min_px <= 0 or valid.sum() < 100:
        return out
    for date, other in ((after, before), (before, after)):
        matched = np.stack([_match(other[i], date[i], valid) for i in range(len(other))])
        with np.errstate(invalid="ignore", divide="ignore"):
            visible = date[:3]
            whiteness = (visible.max(0) - visible.min(0)) / visible.mean(0)
            cloud = (
                valid
                & (date[0] > CLOUD_BLUE)
                & ((date - matched).min(0) > CLOUD_RISE)
                & (whiteness < CLOUD_WHITENESS)
                & (date[3] > CLOUD_NIR_SWIR * date[4])
            )
            shadow = valid & ((date[2:] / matched[2:]).max(0) < SHADOW_RATIO)
            shadow &= date[3] < SHADOW_NIR
            shadow &= _nd(other[1], other[4]) <= params.water_mndwi  # water darkens alone
        out |= _blobs(cloud, params.cloud_min_px) | _blobs(shadow, params.cloud_min_px)
    return out & valid


def pair_change(
    before: xr.Dataset,
    after: xr.Dataset,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """Lasting man-made change between two composites of one site.

    Parameters
    ----------
    before, after : (y, x) reflectance of the six composite bands
        (:data:`~nampo.products.variables.COMPOSITE_BANDS`), NaN where not observed.
    params : the method's parameters.

    Returns
    -------
    xr.Dataset with (y, x) ``change`` (bool), ``type`` (uint8, :data:`TYPES`, 0 = none),
    ``score`` (float32, the smoothed score of rule 4; NaN where either date has no value
    or is obscured) and ``obscured`` (bool, rule 0: a cloud or its shadow on either date,
    :func:`obscured`), and the threshold of rule 5 in ``score.attrs["threshold"]``.
    """
    a, b = _stack(before), _stack(after)
    hidden = _hide_clouds(a, b, params)
    valid = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    shape = valid.shape
    score = np.full(shape, np.nan)
    kind = np.zeros(shape, "uint8")
    threshold = np.nan
    if valid.sum() >= 100:  # too few pixels for site statistics: no change claimed
        bm = np.stack([_match(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
        spread = np.array([a[i][valid].std() for i in range(len(COMPOSITE_BANDS))])
        d = (bm - a) / np.where(spread > 0, spread, 1.0)[:, None, None]
        raw = np.sqrt((d**2).sum(0))
        ndvi_a, ndvi_b = _nd(a[3], a[2]), _nd(bm[3], bm[2])
        water_a, water_b = _nd(a[1], a[4]), _nd(bm[1], bm[4])
        natural = (ndvi_a > params.vegetation_ndvi) & (ndvi_b > params.vegetation_ndvi)
        natural |= (water_a > params.water_mndwi) & (water_b > params.water_mndwi)
        natural |= (ndvi_b > params.vegetation_ndvi) & (ndvi_b - ndvi_a > params.greening)
        raw = np.where(valid & ~natural, raw, 0.0)
        smooth = ndimage.uniform_filter(raw, params.smooth_px, mode="nearest")
        weight = ndimage.uniform_filter(valid.astype("float64"), params.smooth_px, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            smooth = np.where(valid, smooth / weight, np.nan)
        values = smooth[valid]
        threshold = float(values.mean() + params.k * values.std())
        changed = valid & (smooth > threshold)
        score = smooth
        kind = _types(changed, a, bm, params)
    out = _result(before, kind, score)
    out["obscured"] = (("y", "x"), hidden)
    out["score"].attrs.update(threshold=threshold, long_name="before/after change score")
    out.attrs["params"] = repr(params)
    return out


def _types(changed: np.ndarray, a: np.ndarray, bm: np.ndarray, params: PairParams) -> np.ndarray:
    """The change type of each changed pixel, from the two dates' indices (the first rule
    that holds wins)."""
    ndvi_a, ndvi_b = _nd(a[3], a[2]), _nd(bm[3], bm[2])
    water_a, water_b = _nd(a[1], a[4]), _nd(bm[1], bm[4])
    bright = bm.mean(0) - a.mean(0)
    water, green = params.water_mndwi, params.vegetation_ndvi
    rules = [
        (WATER_TO_LAND, (water_a > water) & (water_b <= water)),
        (VEGETATION_LOSS, (ndvi_a > green) & (ndvi_b <= green)),
        (BRIGHTENING, bright > 0),
    ]
    kind = np.where(changed, OTHER, 0).astype("uint8")
    for code, test in reversed(rules):
        kind = np.where(changed & test, code, kind).astype("uint8")
    return kind


def _result(before: xr.Dataset, kind: np.ndarray, score: np.ndarray) -> xr.Dataset:
    coords = {"y": before["y"], "x": before["x"]}
    if "spatial_ref" in before.coords:
        coords["spatial_ref"] = before["spatial_ref"]
    out = xr.Dataset(
        {
            "change": (("y", "x"), kind > 0),
            "type": (("y", "x"), kind),
            "score": (("y", "x"), score.astype("float32")),
        },
        coords=coords,
    )
    out["type"].attrs.update(flag_values=list(TYPES), flag_meanings=" ".join(TYPES.values()))
    return out


def store_pair_change(
    ds: xr.Dataset,
    month,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """:func:`pair_change` between a store's baseline and one of its months.

    Parameters
    ----------
    ds : the store's dataset (:meth:`nampo.io.store.Store.open`).
    month : the month (anything ``ds.sel(time=...)`` takes: ``"2017-11"``).
    """
    before = xr.Dataset({b: ds[f"base_{b}"] for b in COMPOSITE_BANDS})
    now = ds[list(COMPOSITE_BANDS)].sel(time=month)
    if "time" in now.dims:
        if now.sizes["time"] != 1:
            raise ValueError(f"{month!r} selects {now.sizes['time']} months; give one")
        now = now.isel(time=0)
    return pair_change(before.compute(), now.compute(), params)


def _stack(ds: xr.Dataset) -> np.ndarray:
    return np.stack([np.asarray(ds[b].values, dtype="float64") for b in COMPOSITE_BANDS])


def _hide_clouds(a: np.ndarray, b: np.ndarray, params: PairParams) -> np.ndarray:
    """Rule 0: clouds and their shadows set to not observed (NaN) on both dates, in place;
    returns where."""
    hidden = obscured(a, b, params)
    a[:, hidden] = np.nan
    b[:, hidden] = np.nan
    return hidden


def local_mean(x: np.ndarray, size: int, valid: np.ndarray) -> np.ndarray:
    """Mean of `x` over `size` x `size` pixels, of the valid pixels only (what `x` holds
    elsewhere, NaN included, does not count); NaN where no valid pixel is near."""
    total = ndimage.uniform_filter(np.where(valid, x, 0.0), size, mode="nearest")
    weight = ndimage.uniform_filter(valid.astype("float64"), size, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / weight


def pair_features(
    before: xr.Dataset,
    after: xr.Dataset,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Named per-pixel features of two composites, for a model fitted on labelled pairs.

    All are in units that travel between sites: the later date is matched to the earlier
    one (rule 1), band differences are divided by the site's spread (rule 2), scores are
    z-scores over the site. Names: ``d<i>`` (band ``i`` of
    :data:`~nampo.products.variables.COMPOSITE_BANDS`, matched and scaled difference) and its means
    over 3, 5 and 9 pixels (``d<i>_m3`` ...); ``cv``, ``cv3``, ``cv5``, ``cv9`` (change-vector
    length and its means, z-scores); ``cv_std3`` (its 3 x 3 standard deviation); ``ndvi``,
    ``mndwi``, ``ndbi`` (first date) and their changes ``dndvi``, ``dmndwi``, ``dndbi``,
    ``dndvi3``, ``dndbi3``; ``natural`` (1 where rule 3 says not man-made); ``rule3``,
    ``rule5``, ``rule9`` (the rule score of :func:`pair_change` at 3, 5, 9 pixels,
    z-scores); ``dbright``, ``dbright3`` (mean reflectance change in units of the site's
    spread); ``bright`` (first date's mean reflectance, z-score).

    Clouds and their shadows (rule 0, :func:`obscured`) count as not observed.

    Returns
    -------
    (names, features, valid): ``features`` is (len(names), y, x) float32, ``valid`` where both
    dates have values (elsewhere features are meaningless). With fewer than 100 valid
    pixels there are no site statistics: ``valid`` is all False.
    """
    a, b = _stack(before), _stack(after)
    _hide_clouds(a, b, params)
    valid = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    if valid.sum() < 100:
        valid[:] = False
        return list(FEATURES), np.zeros((len(FEATURES), *valid.shape), "float32"), valid
    bm = np.stack([_match(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
    spread = np.array([a[i][valid].std() for i in range(len(COMPOSITE_BANDS))])
    d = (bm - a) / np.where(spread > 0, spread, 1.0)[:, None, None]
    cv = np.sqrt((d**2).sum(0))

    def z(x: np.ndarray) -> np.ndarray:  # in units of the site's spread
        v = x[valid]
        return (x - v.mean()) / (v.std() or 1.0)

    f: dict[str, np.ndarray] = {}
    for i in range(len(COMPOSITE_BANDS)):
        f[f"d{i}"] = d[i]
        for size in (3, 5, 9):
            f[f"d{i}_m{size}"] = local_mean(d[i], size, valid)
    f["cv"] = z(cv)
    for size in (3, 5, 9):
        f[f"cv{size}"] = z(local_mean(cv, size, valid))
    m3 = local_mean(cv, 3, valid)
    with np.errstate(invalid="ignore"):  # NaN where no valid pixel is near
        var3 = np.maximum(local_mean(cv**2, 3, valid) - m3**2, 0.0)
    f["cv_std3"] = np.sqrt(var3) / (cv[valid].std() or 1.0)
    ndvi_a, ndvi_b = _nd(a[3], a[2]), _nd(bm[3], bm[2])
    water_a, water_b = _nd(a[1], a[4]), _nd(bm[1], bm[4])
    ndbi_a, ndbi_b = _nd(a[4], a[3]), _nd(bm[4], bm[3])
    f["ndvi"], f["mndwi"], f["ndbi"] = ndvi_a, water_a, ndbi_a
    f["dndvi"], f["dmndwi"], f["dndbi"] = ndvi_b - ndvi_a, water_b - water_a, ndbi_b - ndbi_a
    f["dndvi3"] = local_mean(ndvi_b - ndvi_a, 3, valid)
    f["dndbi3"] = local_mean(ndbi_b - ndbi_a, 3, valid)
    natural = (ndvi_a > params.vegetation_ndvi) & (ndvi_b > params.vegetation_ndvi)
    natural |= (water_a > params.water_mndwi) & (water_b > params.water_mndwi)
    natural |= (ndvi_b > params.vegetation_ndvi) & (ndvi_b - ndvi_a > params.greening)
    f["natural"] = natural.astype("float64")
    rule = np.where(natural, 0.0, cv)
    for size in (3, 5, 9):
        f[f"rule{size}"] = z(local_mean(rule, size, valid))
    bright = a.mean(0)
    f["dbright"] = (bm.mean(0) - bright) / (bright[valid].std() or 1.0)
    f["dbright3"] = local_mean(f["dbright"], 3, valid)
    f["bright"] = z(bright)
    out = np.stack([f[name] for name in FEATURES]).astype("float32")
    valid &= np.isfinite(out).all(0)
    return list(FEATURES), np.where(valid, out, 0.0).astype("float32"), valid


FEATURES = (
    *(f"d{i}{s}" for i in range(6) for s in ("", "_m3", "_m5", "_m9")),
    *("cv", "cv3", "cv5", "cv9", "cv_std3"),
    *("ndvi", "mndwi", "ndbi", "dndvi", "dmndwi", "dndbi", "dndvi3", "dndbi3"),
    *("natural", "rule3", "rule5", "rule9", "dbright", "dbright3", "bright"),
)
"""Names of :func:`pair_features`, in its order."""


@dataclass(frozen=True)
class LinearModel:
    """A fitted logistic model over :func:`pair_features`: a pixel changed when
    ``intercept + sum(coef * (feature - mean) / scale)`` (its log-odds) is above
    ``threshold``. Where the numbers come from is the fitter's to document."""

    names: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.0
    mean: tuple[float, ...] = field(default=())
    """Per-feature centre (empty: 0)."""
    scale: tuple[float, ...] = field(default=())
    """Per-feature scale (empty: 1)."""

    def __post_init__(self):
        n = len(self.names)
        unknown = sorted(set(self.names) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; pair_features gives {FEATURES}")
        for what in ("coef", "mean", "scale"):
            size = len(getattr(self, what))
            if size != n and not (what != "coef" and size == 0):
                raise ValueError(f"{what} has {size} values for {n} features")

    def log_odds(self, names: list[str], features: np.ndarray) -> np.ndarray:
        """(y, x) log-odds from :func:`pair_features`' (names, features)."""
        n = len(self.names)
        mean = np.asarray(self.mean or (0.0,) * n)
        scale = np.asarray(self.scale or (1.0,) * n)
        out = np.full(features.shape[1:], self.intercept, "float64")
        for i, name in enumerate(self.names):
            out += self.coef[i] * (features[names.index(name)] - mean[i]) / scale[i]
        return out


def model_change(
    before: xr.Dataset,
    after: xr.Dataset,
    model: LinearModel,
    params: PairParams = PairParams(),  # noqa: B008 (frozen)
) -> xr.Dataset:
    """Before/after change by a fitted :class:`LinearModel` instead of rules 4-5: the same
    outputs as :func:`pair_change` (``score`` is the log-odds, ``score.attrs["threshold"]``
    the model's threshold); the type is read from the two dates as there."""
    names, features, valid = pair_features(before, after, params)
    score = np.where(valid, model.log_odds(names, features), np.nan)
    changed = valid & (score > model.threshold)
    a, b = _stack(before), _stack(after)
    hidden = _hide_clouds(a, b, params)
    kind = np.zeros(valid.shape, "uint8")
    if valid.any():
        bm = np.stack([_match(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
        kind = _types(changed, a, bm, params)
    out = _result(before, kind, score)
    out["obscured"] = (("y", "x"), hidden)
    out["score"].attrs.update(threshold=model.threshold, long_name="before/after change log-odds")
    out.attrs["model"] = repr(model)
    return out
