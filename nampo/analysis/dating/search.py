"""The break search of change dating on one tile's arrays (:func:`detect`): the best and
latest class change of each pixel, the brightness step on built surfaces, and the size of
a change. The rules, one sentence each: ``docs/change.md``, "Change dating"."""

from __future__ import annotations

import numpy as np

from nampo.analysis.dating.normalise import class_spectra, normalised
from nampo.analysis.dating.params import (
    BRIGHT,
    CHANGE_CLASSES,
    CONSTRUCTION,
    NO_CHANGE,
    NO_MONTH,
    UNCLASSIFIED,
    ChangeParams,
    change_classes,
    change_type,
    season_mask,
)
from nampo.analysis.dating.veils import veiled
from nampo.analysis.nanstats import nanmedian
from nampo.products.classes import BARE, BUILT, VEGETATION, WATER

__all__ = ["detect"]


def detect(
    landcover: np.ndarray,
    bands: np.ndarray,
    month_of_year: np.ndarray,
    params: ChangeParams = ChangeParams(),  # noqa: B008 (frozen)
) -> dict[str, np.ndarray]:
    """Date the lasting change of every pixel of one tile.

    Parameters
    ----------
    landcover : (time, y, x) uint8, the store's ``landcover`` (0: no clear observation).
    bands : (band, time, y, x) float32, the six composite bands in
        :data:`~nampo.products.variables.COMPOSITE_BANDS` order.
    month_of_year : (time,) calendar month (1-12) of each time step.
    params : the method's parameters.

    Returns
    -------
    dict of (y, x) arrays: ``type`` (uint8, 0 = no change), ``class_before``,
    ``class_after`` (uint8, :data:`CHANGE_CLASSES`), ``last_before`` and ``first_after``
    (int16 time index, -1 = none), ``n_before``, ``n_after`` (uint8, clear months),
    ``magnitude`` (float32, change-vector length of the six-band reflectance between the
    states' medians), ``shape_change`` (float32, the same for NDVI, MNDWI, NDBI and the
    red-blue slope) and ``confidence`` (float32, 0-1).

    Examples
    --------
    >>> lc = np.array([2, 2, 2, 4, 4, 4], "uint8")[:, None, None]
    >>> bands = np.full((6, 6, 1, 1), 0.1, "float32")
    >>> out = detect(lc, bands, np.arange(5, 11))
    >>> int(out["type"][0, 0]), int(out["first_after"][0, 0])
    (3, 3)
    """
    t, ny, nx = landcover.shape
    p = ny * nx
    cls = change_classes(landcover, bands[0], params)
    # months under a veil of haze the cloud mask missed are gaps (rule 1; veils.py)
    cls[veiled(cls, np.asarray(bands[0]), params)] = 0
    cls = cls.reshape(t, p)
    flat = np.asarray(bands, dtype="float32").reshape(len(bands), t, p)
    out = _latest_class_change(cls, np.asarray(month_of_year), params)
    # Steps and sizes are measured on months brought to a common level, that of the
    # pixels whose class did not change: a hazy month is brighter everywhere, which is
    # not change (rules 7 and 8; normalise.py).
    flat = normalised(cls, flat, out["type"] == 0)
    _brightness_breaks(cls, flat, out, params)
    bare_from = _cleared_then_built(cls, out, params)
    cleared = bare_from >= 0
    _magnitude(cls, flat, out, params.state_months, bare_from)
    large = (out["magnitude"] >= params.min_magnitude) | (
        out["shape_change"] >= params.min_shape_change
    )
    # the bare months are the evidence of a site cleared and built on, and the last step
    # need only be over the month-to-month noise of a stable pixel (rule 12)
    large |= cleared & (out["magnitude"] >= params.min_magnitude / 2.5)
    # a change to or from water must have changed at least half the pixel (rule 10)
    fraction = _water_fraction(cls, flat, out, params.state_months)
    large &= ~(fraction < params.min_water_fraction)
    weak = (out["type"] > 0) & ~large
    for key, empty in NO_CHANGE.items():
        out[key][weak] = empty
    return {k: v.reshape(ny, nx) for k, v in out.items()}


def _cumulative(mask: np.ndarray) -> np.ndarray:
    """Counts of `mask` over time indices < k, for k in 0..T (leading axis T + 1)."""
    out = np.zeros((mask.shape[0] + 1, *mask.shape[1:]), dtype="int16")
    np.cumsum(mask, axis=0, out=out[1:])
    return out


def _class_breaks(
    cls: np.ndarray, moy: np.ndarray, params: ChangeParams, start: np.ndarray | None = None
) -> dict:
    """The best class change of each pixel whose before state starts at `start` or later."""
    t, p = cls.shape
    start = np.zeros(p, "int64") if start is None else start.astype("int64")
    w = params.state_months
    k = max(CHANGE_CLASSES) + 1
    by_time = cls[:, None, :] == np.arange(k)[None, :, None]  # (t, k, p)
    by_time[:, 0] = False
    counts = _cumulative(by_time)  # (t + 1, k, p)
    valid = _cumulative(cls > 0)  # (t + 1, p)
    # changes that involve water (vegetation) are judged in its season (open water,
    # growing season): per class, clear months in that season, and all clear months in it
    seasonal = {}
    for code in (WATER, VEGETATION):
        in_season = season_mask(moy, code, params)
        seasonal[code] = (
            _cumulative(by_time & in_season[:, None, None]),
            _cumulative((cls > 0) & in_season[:, None]),
        )
    cols = np.arange(p)

    best = np.full(p, -np.inf, dtype="float32")
    out = {
        "type": np.zeros(p, "uint8"),
        "class_before": np.zeros(p, "uint8"),
        "class_after": np.zeros(p, "uint8"),
        "last_before": np.full(p, NO_MONTH, "int16"),
        "first_after": np.full(p, NO_MONTH, "int16"),
        "n_before": np.zeros(p, "uint8"),
        "n_after": np.zeros(p, "uint8"),
        "confidence": np.zeros(p, "float32"),
    }
    for i in range(t - 1):
        # the before state: clear months in [lo, i], at most `state_months` of them
        lo = np.maximum(start, i + 1 - w)
        before = counts[i + 1] - counts[lo, :, cols].T  # (k, p)
        a = before.argmax(axis=0)
        n_a0, nb0 = before[a, cols], valid[i + 1] - valid[lo, cols]
        ok_i = (i >= start) & (cls[i] == a) & (cls[i] > 0)
        if not ok_i.any():
            continue
        # the same, in the season of water (vegetation) only
        before_in = {
            code: (
                (of_class[i + 1] - of_class[lo, :, cols].T)[a, cols],
                clear[i + 1] - clear[lo, cols],
            )
            for code, (of_class, clear) in seasonal.items()
        }
        for j in range(i + 1, min(t, i + 2 + params.max_transition)):
            hi = min(t, j + w)  # the after state: clear months in [j, hi)
            after = counts[hi] - counts[j]
            b = after.argmax(axis=0)
            ok = ok_i & (cls[j] == b) & (b != a)
            if not ok.any():
                continue
            n_a, nb, n_b, na = n_a0, nb0, after[b, cols], valid[hi] - valid[j]
            ok &= (nb >= params.min_before) & (na >= params.min_after)
            # a change that involves water (vegetation) compares the two states in that
            # season: each needs a clear month in it, and is pure over those months (not
            # ice against open water, not winter stubble against summer grass)
            for code, (of_class, clear) in seasonal.items():
                involved = (a == code) | (b == code)
                n_a = np.where(involved, before_in[code][0], n_a)
                nb = np.where(involved, before_in[code][1], nb)
                n_b = np.where(involved, (of_class[hi] - of_class[j])[b, cols], n_b)
                na = np.where(involved, clear[hi] - clear[j], na)
            ok &= (n_a >= 1) & (n_a >= params.purity * nb)
            ok &= (n_b >= 1) & (n_b >= params.purity * na)
            # vegetation passes through its stages within the growing season (bare in
            # spring, green in summer, harvested): a state of a change that involves it is
            # judged on as many months of that season as any state needs, not on one
            veg = (a == VEGETATION) | (b == VEGETATION)
            ok &= ~veg | ((nb >= params.min_before) & (na >= params.min_after))
            if not ok.any():
                continue
            transition = valid[j] - valid[i + 1]
            score = (n_a + n_b - params.transition_cost * transition).astype("float32")
            take = ok & (score > best)
            if not take.any():
                continue
            best[take] = score[take]
            out["class_before"][take] = a[take]
            out["class_after"][take] = b[take]
            out["last_before"][take] = i
            out["first_after"][take] = j
            out["n_before"][take] = np.minimum(nb[take], 255)
            out["n_after"][take] = np.minimum(na[take], 255)
            with np.errstate(invalid="ignore", divide="ignore"):
                conf = (n_a / nb) * (n_b / np.maximum(na, 1))
            conf *= np.minimum(1.0, na / (params.min_after + 2))
            out["confidence"][take] = conf[take]
    out["type"] = change_type(out["class_before"], out["class_after"])
    return out


def _latest_class_change(cls: np.ndarray, moy: np.ndarray, params: ChangeParams) -> dict:
    """The best class change of each pixel, then a later one whose before state starts
    after the first change's last month before (a pond drained, then built on: the bare
    months may have been the first change's transition): the latest is reported."""
    out = _class_breaks(cls, moy, params)
    idx = np.flatnonzero(out["type"] > 0)
    if idx.size:
        later = _class_breaks(cls[:, idx], moy, params, start=out["last_before"][idx] + 1)
        hit = later["type"] > 0
        for key, values in later.items():
            out[key][idx[hit]] = values[hit]
    return out


def _cleared_then_built(cls: np.ndarray, out: dict, params: ChangeParams) -> np.ndarray:
    """Rule 12: built ground cleared to bare, then built on again. Pixels without a change
    so far whose clear months read built (or bright), then bare for at least `min_after`
    clear months (`purity` of them bare), then built again for at least `min_after`
    (`min_before` built before; each side judged over `state_months`, `purity` of it
    built): a construction, from the last bare month to the first built one after. The
    latest such bare state is taken. Returns (pixel,) the first month of the bare state
    of the pixels set (their before state, for its size), -1 elsewhere."""
    t, p = cls.shape
    bare_from = np.full(p, -1, "int64")
    if not params.cleared_then_built:
        return bare_from
    idx = np.flatnonzero(out["type"] == 0)
    if idx.size == 0:
        return bare_from
    c = cls[:, idx]
    built = _cumulative(np.isin(c, (BUILT, BRIGHT)))
    bare = _cumulative(c == BARE)
    clear = _cumulative(c > 0)
    w = params.state_months
    best_s = np.full(idx.size, -1)
    best_e = np.full(idx.size, -1)
    for e in range(1, t - 1):
        right = min(t, e + 1 + w)
        n_after, b_after = clear[right] - clear[e + 1], built[right] - built[e + 1]
        ok_e = (c[e] == BARE) & (n_after >= params.min_after)
        ok_e &= b_after >= params.purity * np.maximum(n_after, 1)
        if not ok_e.any():
            continue
        for s0 in range(max(1, e + 1 - w), e + 1):  # a bare state of at most w months
            left = max(0, s0 - w)
            n_before, b_before = clear[s0] - clear[left], built[s0] - built[left]
            n_bare, b_bare = clear[e + 1] - clear[s0], bare[e + 1] - bare[s0]
            ok = ok_e & (c[s0] == BARE) & (n_before >= params.min_before)
            ok &= b_before >= params.purity * np.maximum(n_before, 1)
            ok &= (b_bare >= params.min_after) & (b_bare >= params.purity * n_bare)
            best_s = np.where(ok, s0, best_s)
            best_e = np.where(ok, e, best_e)
    hit = best_e >= 0
    if not hit.any():
        return bare_from
    px, last, cols = idx[hit], best_e[hit], np.flatnonzero(hit)
    later = c[:, hit]
    first_after = np.argmax((np.arange(t)[:, None] > last[None]) & (later > 0), axis=0)
    n_bare = bare[last + 1, cols] - bare[best_s[hit], cols]
    n_after = clear[np.minimum(t, last + 1 + w), cols] - clear[last + 1, cols]
    out["type"][px] = CONSTRUCTION
    out["class_before"][px] = BARE
    out["class_after"][px] = later[first_after, np.arange(px.size)]
    out["last_before"][px] = last
    out["first_after"][px] = first_after
    out["n_before"][px] = np.minimum(n_bare, 255)
    out["n_after"][px] = np.minimum(n_after, 255)
    out["confidence"][px] = np.minimum(1.0, n_after / (params.min_after + 2))
    bare_from[px] = best_s[hit]
    return bare_from


def _brightness_breaks(cls: np.ndarray, bands: np.ndarray, out: dict, params: ChangeParams):
    """One-break step in brightness on built surfaces: pixels with no class change, and
    pixels whose class change ended built (from its first month after on: containers
    stacked on a new quay). A step found replaces the class change (the latest change)."""
    t, p = cls.shape
    start = np.where(out["class_after"] == BUILT, out["first_after"], 0)
    start = np.where((out["type"] == 0) | (out["class_after"] == BUILT), start, t)
    valid = (cls > 0) & (np.arange(t)[:, None] >= start[None, :])
    nvalid = valid.sum(axis=0)
    built = ((cls == BUILT) & valid).sum(axis=0)
    cand = nvalid >= params.min_before + params.min_after
    cand &= built >= params.purity * np.maximum(nvalid, 1)
    idx = np.flatnonzero(cand)
    if idx.size == 0:
        return
    v = valid[:, idx]
    x = bands[:, :, idx].mean(axis=0)  # brightness: NaN where a band is missing
    v &= np.isfinite(x)
    cnt = _cumulative(v)
    best = np.full(idx.size, -1.0)
    res_i = np.full(idx.size, NO_MONTH, "int16")
    res_j = np.full(idx.size, NO_MONTH, "int16")
    res_conf = np.zeros(idx.size, "float32")
    res_nb = np.zeros(idx.size, "int32")
    res_na = np.zeros(idx.size, "int32")
    res_up = np.zeros(idx.size, bool)
    w = params.state_months
    for i in range(t - 1):
        # the two sides: clear months in (i - w, i] and (i, i + w]
        lo, hi = max(0, i + 1 - w), min(t, i + 1 + w)
        nb, na = cnt[i + 1] - cnt[lo], cnt[hi] - cnt[i + 1]
        ok = v[i] & (nb >= params.min_before) & (na >= params.min_after)
        if not ok.any():
            continue
        # medians, so that one bad month on either side cannot make or grow a step
        xs = np.where(v[lo:hi], x[lo:hi], np.nan)
        # NaN on a side without a value: not a candidate
        mb = nanmedian(xs[: i + 1 - lo], axis=0)
        ma = nanmedian(xs[i + 1 - lo :], axis=0)
        step = ma - mb
        ok &= np.abs(step) >= params.min_brightness_step
        if not ok.any():
            continue
        side = np.sign(step) * (x[lo:hi] - (mb + ma) / 2)  # < 0 on the before side
        vv = v[lo:hi]
        is_before = np.arange(lo, hi)[:, None] <= i
        good_b = (vv & is_before & (side < 0)).sum(axis=0)
        good_a = (vv & ~is_before & (side > 0)).sum(axis=0)
        ok &= (good_b >= params.purity * nb) & (good_a >= params.purity * na)
        score = (good_b + good_a).astype(float)
        take = ok & (score > best)
        if not take.any():
            continue
        j = i + 1 + np.argmax(v[i + 1 : hi], axis=0)  # first clear month after i
        best[take] = score[take]
        res_i[take], res_j[take] = i, j[take]
        res_nb[take], res_na[take] = nb[take], na[take]
        res_up[take] = step[take] > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = (good_b / nb) * (good_a / na) * np.minimum(1.0, na / (params.min_after + 2))
        res_conf[take] = conf[take]
    hit = res_i >= 0
    where = idx[hit]
    out["type"][where] = np.where(res_up[hit], CONSTRUCTION, UNCLASSIFIED)
    out["class_before"][where] = BUILT
    out["class_after"][where] = BUILT
    out["last_before"][where] = res_i[hit]
    out["first_after"][where] = res_j[hit]
    out["n_before"][where] = np.minimum(res_nb[hit], 255)
    out["n_after"][where] = np.minimum(res_na[hit], 255)
    out["confidence"][where] = res_conf[hit]


def _magnitude(
    cls: np.ndarray, bands: np.ndarray, out: dict, state_months: int, before_from: np.ndarray
) -> None:
    """Change-vector length between the medians of the before and after states: of the
    six bands (``magnitude``) and of their normalised differences (``shape_change``).
    `before_from` (pixel,): the first month of each pixel's before state (-1: as far back
    as `state_months` allows)."""
    p = cls.shape[1]
    mag = np.full(p, np.nan, "float32")
    shp = np.full(p, np.nan, "float32")
    idx = np.flatnonzero(out["type"] > 0)
    if idx.size:
        before, after = _state_months(cls, out, idx, state_months)
        before &= np.arange(cls.shape[0])[:, None] >= before_from[idx]
        x = bands[:, :, idx]
        mb = nanmedian(np.where(before, x, np.nan), axis=1)  # NaN: a band of a gap pixel
        ma = nanmedian(np.where(after, x, np.nan), axis=1)
        mag[idx] = np.sqrt(np.nansum((ma - mb) ** 2, axis=0))
        shape_b, shape_a = _shape(mb), _shape(ma)
        shp[idx] = np.sqrt(np.nansum((shape_a - shape_b) ** 2, axis=0))
    out["magnitude"] = mag
    out["shape_change"] = shp


def _state_months(
    cls: np.ndarray, out: dict, idx: np.ndarray, state_months: int
) -> tuple[np.ndarray, np.ndarray]:
    """(time, pixel) masks of the pixels `idx`: their valid months among the last
    `state_months` of the before state and the first `state_months` of the after state."""
    time = np.arange(cls.shape[0])[:, None]
    valid = cls[:, idx] > 0
    lb, fa = out["last_before"][idx], out["first_after"][idx]
    before = valid & (time <= lb) & (time > lb - state_months)
    after = valid & (time >= fa) & (time < fa + state_months)
    return before, after


def _water_fraction(cls: np.ndarray, bands: np.ndarray, out: dict, state_months: int):
    """(pixel,) share of each pixel that a class change to or from water changed (NaN for
    other pixels, and where a class has no reference spectrum), by linear unmixing: the
    change of its six-band medians projected on the change between the tile's pure
    spectra of the two classes (those of its unchanged pixels of each class, in the same
    months: :func:`.normalise.class_spectra`)."""
    p = cls.shape[1]
    frac = np.full(p, np.nan, "float32")
    cb, ca = out["class_before"], out["class_after"]
    idx = np.flatnonzero((out["type"] > 0) & (cb != ca) & ((cb == WATER) | (ca == WATER)))
    if idx.size == 0:
        return frac
    pure = class_spectra(cls, bands, out["type"] == 0, np.unique(np.r_[cb[idx], ca[idx]]))
    if WATER not in pure or len(pure) < 2:
        return frac
    idx = idx[np.isin(cb[idx], list(pure)) & np.isin(ca[idx], list(pure))]
    before, after = _state_months(cls, out, idx, state_months)
    x = bands[:, :, idx]
    pb = np.stack([pure[int(c)] for c in cb[idx]], axis=-1)  # (band, time, pixel)
    pa = np.stack([pure[int(c)] for c in ca[idx]], axis=-1)
    d = _median_over(x, after) - _median_over(x, before)
    dp = _median_over(pa, after) - _median_over(pb, before)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac[idx] = (d * dp).sum(axis=0) / (dp * dp).sum(axis=0)
    return frac


def _median_over(x: np.ndarray, months: np.ndarray) -> np.ndarray:
    """(band, pixel) median of `x` (band, time, pixel) over each pixel's `months` (time,
    pixel), NaN where none of them has a value."""
    return nanmedian(np.where(months[None] & np.isfinite(x), x, np.nan), axis=1)


def _shape(m: np.ndarray) -> np.ndarray:
    """Normalised differences of median bands (blue, green, red, nir, swir16, swir22):
    NDVI, MNDWI, NDBI and the red-blue slope, the colour of a surface whatever its
    brightness."""
    blue, green, red, nir, swir16, _ = m
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([
            (nir - red) / (nir + red),
            (green - swir16) / (green + swir16),
            (swir16 - nir) / (swir16 + nir),
            (red - blue) / (red + blue),
        ])  # fmt: skip
