"""Scene-wide differences are not change: the months of one tile brought to a common level
before change dating measures steps and sizes (rules 7 and 8 of ``docs/change.md``).

A month whose scenes carried haze the cloud mask missed, a thin-cloud veil or another
aerosol or calibration residual is brighter (or darker) everywhere at once. Under heavy
cloud such a month can be one of only two clear months after a date, and then lifts water,
soil and roofs alike into a lasting "change". Relative radiometric normalisation is how
change detection on real imagery answers this (pseudo-invariant features, as in Schott et
al. 1988 and Canty and Nielsen's IR-MAD): here every month's departure from each pixel's
own median is compared with the departure of the other pixels of its kind in the same
month, and the common part is taken out.

Pixels are of three kinds by their most frequent class over the series: water,
vegetation, and the rest of the land (bare, built, dark, bright), because the seasons move
them differently (vegetation greens, water carries more or less sediment, paving and soil
do neither); the rest of the land is one kind so that no single new roof or yard can be a
large share of it. The common part is the median over the kind's reference pixels,
those whose class did not change (the class search runs first and does not look at
reflectance): a coal yard or a reclaimed quay may cover much of a tile's pixels of its
kind, and must not be taken for the tile's level. A kind with too few clear reference
pixels in a month borrows the whole tile's departure; a tile with too few is left as it
is.
"""

from __future__ import annotations

import numpy as np

from nampo.analysis.nanstats import nanmedian
from nampo.products.classes import VEGETATION, WATER

__all__ = ["MIN_PIXELS", "MIN_SPECTRUM_PIXELS", "class_spectra", "month_offsets", "normalised"]

MIN_PIXELS = 50
"""Clear pixels a median of departures needs: the median of n pixels scatters by about
1.25 x their spread / sqrt(n), so 50 pixels with a class's spread of about 0.01-0.03 fix a
month's level to 0.002-0.005, under a tenth of the smallest step dating reports."""


MIN_SPECTRUM_PIXELS = 10
"""Clear pixels a class's spectrum in a month needs (:func:`class_spectra`): it only has
to place a changed pixel between two classes whose spectra lie 0.2-0.4 apart, so the
median of 10 pixels (scatter about 1.25 x 0.03 / sqrt(10) = 0.012 per band) is enough:
it moves the changed share by under 0.1."""


def month_offsets(cls: np.ndarray, bands: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(band, time, pixel) scene-wide departure of each month for each pixel's kind.

    Parameters
    ----------
    cls : (time, pixel) change classes, 0 where the month has no clear observation.
    bands : (band, time, pixel) reflectance, NaN where missing.
    reference : (pixel,) bool, the pixels whose departures make the common level (those
        without a class change).
    """
    n_bands, t, p = bands.shape
    clear = (cls > 0)[None] & np.isfinite(bands)
    x = np.where(clear, bands, np.nan)
    own = nanmedian(x, axis=1)[:, None]  # (band, 1, pixel); NaN: pixels never clear
    departure = x - own
    kind = _kind(_most_frequent_class(cls))

    def common(columns: np.ndarray) -> np.ndarray:
        """(band, time) median departure over the reference pixels among `columns`, NaN
        where too few are clear."""
        d = departure[:, :, columns[reference[columns]]]
        enough = np.isfinite(d).sum(axis=2) >= MIN_PIXELS
        med = nanmedian(d, axis=2) if d.shape[2] else np.full(d.shape[:2], np.nan)
        return np.where(enough, med, np.nan)

    tile = np.nan_to_num(common(np.arange(p)), nan=0.0)
    out = np.zeros((n_bands, t, p), "float32")
    for k in np.unique(kind[kind > 0]):
        columns = np.flatnonzero(kind == k)
        level = common(columns)
        out[:, :, columns] = np.where(np.isfinite(level), level, tile)[:, :, None]
    return out


def normalised(cls: np.ndarray, bands: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`bands` (band, time, pixel) less each month's scene-wide departure for the pixel's
    kind, measured on the `reference` pixels (:func:`month_offsets`)."""
    return (bands - month_offsets(cls, bands, reference)).astype("float32")


def class_spectra(
    cls: np.ndarray, bands: np.ndarray, reference: np.ndarray, codes
) -> dict[int, np.ndarray]:
    """(band, time) spectrum of each class of `codes` in each month: the median over the
    `reference` pixels whose most frequent class it is, in the months they read as it;
    NaN in months with fewer than :data:`MIN_SPECTRUM_PIXELS` of them. A class with
    fewer such pixels in every month is left out.

    Parameters are as :func:`month_offsets`'s (`bands` already normalised or not).
    """
    kind = _most_frequent_class(cls)
    out = {}
    for c in codes:
        columns = np.flatnonzero(reference & (kind == c))
        if columns.size < MIN_SPECTRUM_PIXELS:
            continue
        x = np.where((cls[:, columns] == c)[None], bands[:, :, columns], np.nan)
        enough = (np.isfinite(x).sum(axis=2) >= MIN_SPECTRUM_PIXELS).all(axis=0)  # (time,)
        if not enough.any():
            continue
        spectrum = np.full(x.shape[:2], np.nan, "float32")
        spectrum[:, enough] = np.nanmedian(x[:, enough], axis=2)
        out[int(c)] = spectrum
    return out


def _kind(cls: np.ndarray) -> np.ndarray:
    """1 water, 2 vegetation, 3 the rest of the land, 0 never clear."""
    return np.select([cls == WATER, cls == VEGETATION, cls > 0], [1, 2, 3], 0)


def _most_frequent_class(cls: np.ndarray) -> np.ndarray:
    """(pixel,) the most frequent class of each pixel's clear months (0: never clear)."""
    k = int(cls.max()) + 1 if cls.size else 1
    counts = np.stack([(cls == c).sum(axis=0) for c in range(k)])
    counts[0] = 0
    kind = counts.argmax(axis=0)
    return np.where(counts.max(axis=0) > 0, kind, 0)
