"""Mixed pixels at the edge of a change (rule 11 of ``docs/change.md``): a pixel at the
edge of a changed area that changed less than half as much as the fully changed pixels
beside it is less than half new ground, and not a changed pixel.

Reflectance mixes linearly within a 10 m pixel, so the change vector of a pixel a share
``s`` covered by a new tank, roof or pier is ``s`` times that of a pixel it covers
wholly: the ratio of their magnitudes measures the share. The reference is local (the
pixels beside it whose own neighbours all changed), so it needs no class spectra and
holds for any kind of change; a changed area too thin to have such pixels (a line, a
narrow pier) is left as it is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["mixed_edges"]

EIGHT = np.ones((3, 3), bool)


def mixed_edges(change_type: np.ndarray, magnitude: np.ndarray, min_share: float) -> np.ndarray:
    """Pixels (bool, the map's shape) at the edge of a change whose magnitude is under
    `min_share` of the mean magnitude of the fully changed pixels among their eight
    neighbours. A pixel is fully changed (a core pixel) when it and its eight neighbours
    all changed, of any type; pixels beyond the array count as changed, so that the edge
    of a map (or of a tile read with a margin) makes no edge of its own.

    Examples
    --------
    >>> t = np.zeros((5, 6), "uint8"); t[1:4, 1:5] = 5            # a roof, 3 x 4 pixels
    >>> m = np.where(t > 0, 0.6, np.nan).astype("float32")
    >>> m[1:4, 4] = 0.2                                            # its east column a third covered
    >>> mixed_edges(t, m, 0.5)[1:4, 1:5].astype(int)
    array([[0, 0, 0, 1],
           [0, 0, 0, 1],
           [0, 0, 0, 1]])
    """
    changed = np.asarray(change_type) > 0
    if min_share <= 0 or not changed.any():
        return np.zeros(changed.shape, bool)
    mag = np.nan_to_num(np.asarray(magnitude, "float64"))
    core = changed & ndimage.binary_erosion(changed, EIGHT, border_value=1)
    total = ndimage.correlate(np.where(core, mag, 0.0), EIGHT.astype("float64"), mode="constant")
    count = ndimage.correlate(core.astype("float64"), EIGHT.astype("float64"), mode="constant")
    edge = changed & ~core & (count > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return edge & (mag < min_share * total / count)
