"""Before/after change learned from labelled pairs: named, site-normalised per-pixel
features of two composites (:func:`pair_features`) and a fitted logistic model over them
(:class:`LinearModel`, :func:`model_change`). The library ships no coefficients;
``benchmarks/oscd.py`` fits them leave-one-city-out (``docs/change.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import ndimage

from nampo.analysis.before_after.bands import match_to, nd, stack_bands
from nampo.analysis.before_after.clouds import hide_clouds
from nampo.analysis.before_after.params import PairParams
from nampo.analysis.before_after.rules import as_dataset, change_types
from nampo.products.variables import COMPOSITE_BANDS

__all__ = ["FEATURES", "LinearModel", "local_mean", "model_change", "pair_features"]


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
    a, b = stack_bands(before), stack_bands(after)
    hide_clouds(a, b, params)
    valid = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    if valid.sum() < 100:
        valid[:] = False
        return list(FEATURES), np.zeros((len(FEATURES), *valid.shape), "float32"), valid
    bm = np.stack([match_to(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
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
    ndvi_a, ndvi_b = nd(a[3], a[2]), nd(bm[3], bm[2])
    water_a, water_b = nd(a[1], a[4]), nd(bm[1], bm[4])
    ndbi_a, ndbi_b = nd(a[4], a[3]), nd(bm[4], bm[3])
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
    """The features it reads (of :data:`FEATURES`)."""
    coef: tuple[float, ...]
    """Per-feature coefficient, on the centred and scaled feature."""
    intercept: float
    """Log-odds of a pixel whose features are all at their centre."""
    threshold: float = 0.0
    """Log-odds above which a pixel changed."""
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
    a, b = stack_bands(before), stack_bands(after)
    hidden = hide_clouds(a, b, params)
    kind = np.zeros(valid.shape, "uint8")
    if valid.any():
        bm = np.stack([match_to(b[i], a[i], valid) for i in range(len(COMPOSITE_BANDS))])
        kind = change_types(changed, a, bm, params)
    out = as_dataset(before, kind, score)
    out["obscured"] = (("y", "x"), hidden)
    out["score"].attrs.update(threshold=model.threshold, long_name="before/after change log-odds")
    out.attrs["model"] = repr(model)
    return out
