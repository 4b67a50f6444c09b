"""Persistent bright surfaces that the SCL flags as cloud, on tiny literal stacks."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nampo.products import brightmask

CLEAR, CLOUD, SHADOW = 5, 8, 3


def stack(scl: np.ndarray, blue: float | np.ndarray = 0.4):
    dims = ("time", "y", "x")
    b = np.broadcast_to(np.asarray(blue, "f4"), scl.shape).copy()
    return xr.DataArray(scl.astype("u1"), dims=dims), xr.DataArray(b, dims=dims)


def tank(t: int = 5, size: int = 64) -> np.ndarray:
    """A 6 x 6 px bright roof flagged cloud in every scene, in clear surroundings."""
    scl = np.full((t, size, size), CLEAR)
    scl[:, 30:36, 30:36] = CLOUD
    return scl


def test_a_roof_flagged_cloud_in_every_scene_is_taken_back():
    scl, blue = stack(tank())
    ok = brightmask.clear(scl, blue).values
    assert ok[:, 30:36, 30:36].all()
    assert ok.all()


def test_a_moving_cloud_stays_masked():
    scl = np.full((5, 64, 64), CLEAR)
    for t in range(5):
        scl[t, 10 * t : 10 * t + 8, 20:28] = CLOUD  # a small cloud, elsewhere each scene
    s, b = stack(scl)
    ok = brightmask.clear(s, b).values
    assert not ok[scl == CLOUD].any()


def test_a_large_cloud_deck_stays_masked_even_where_it_persists():
    scl = np.full((4, 64, 64), CLEAR)
    scl[:, :, :48] = CLOUD  # three quarters of the tile, every scene
    s, b = stack(scl)
    ok = brightmask.clear(s, b).values
    assert not ok[:, :, :40].any()


def test_flags_in_a_cloudy_neighbourhood_and_unsteady_values_stay_masked():
    scl = tank()
    scl[2] = CLOUD  # scene 2: cloud everywhere, the roof's flag may be a real cloud
    s, b = stack(scl)
    ok = brightmask.clear(s, b).values
    assert ok[[0, 1, 3, 4], 30:36, 30:36].all() and not ok[2].any()
    # A spot whose blue jumps from scene to scene is cloud, however persistent.
    blue = np.full(scl.shape, 0.4, "f4")
    blue[::2] = 0.8
    s, b = stack(tank(), blue)
    assert not brightmask.clear(s, b).values[:, 30:36, 30:36].any()


def test_other_masked_classes_stay_masked():
    scl = tank()
    scl[:, 0:4, 0:4] = SHADOW
    s, b = stack(scl)
    ok = brightmask.clear(s, b).values
    assert not ok[:, 0:4, 0:4].any()
    assert brightmask.clear(*stack(np.zeros((0, 8, 8)))).shape == (0, 8, 8)
