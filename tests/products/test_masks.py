"""nampo.products.masks: the clear-pixel lookup for every code a mask band can hold."""

from __future__ import annotations

import numpy as np

from nampo.products.masks import DEFAULT_MASK_CLASSES, clear_kernel


def test_clear_mask_for_every_dn_a_uint16_scl_can_hold():
    scl = np.arange(2**16, dtype=np.uint16).reshape(1, 1, 256, 256)
    for classes in (DEFAULT_MASK_CLASSES, (), (65535, 4)):
        wanted = np.array(classes, dtype=np.uint16)
        expected = (scl != 0) & ~np.isin(scl, wanted)
        assert np.array_equal(clear_kernel(scl, wanted), expected), classes
