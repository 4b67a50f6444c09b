"""Ships one by one (nampo/analysis/activity/ships.py): ships moored side by side and bow to
stern 15-25 m apart, drawn as Sentinel-2 sees them (hull polygons averaged into 10 m
pixels, blurred by the instrument, a little noise), at slants to the pixel lattice."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.features import rasterize
from rasterio.transform import from_origin
from scipy import ndimage
from shapely.affinity import rotate, translate
from shapely.geometry import box

from nampo.analysis.activity import ActivityParams
from nampo.analysis.activity.ships import berth_axis, split_ships
from nampo.analysis.activity.unit import _bright_objects

P = ActivityParams()
WATER_NIR, SHIP_NIR = 0.03, 0.16  # the scenario's spectral library (turbid water, steel)
WATER_NDSI, SHIP_NDSI = 0.86, -0.04
FINE = 10  # sub-pixels per 10 m pixel
SHAPE = (60, 60)
BLUR_PX = 0.45  # the renderer's MTF (nampo/scenario/sky.py)


def hull(length: float, beam: float, along: float, across: float, angle: float):
    """A hull centred `along`/`across` metres from the scene centre in a frame turned
    `angle` degrees anticlockwise from the x axis (x east, y north, metres)."""
    h = translate(box(-length / 2, -beam / 2, length / 2, beam / 2), along, across)
    cx, cy = SHAPE[1] * 5.0, -SHAPE[0] * 5.0
    return translate(rotate(h, angle, origin=(0, 0)), cx, cy)


def seen(hulls, rng, shift=(0.0, 0.0)):
    """NIR and NDSI of the hulls on open water as 10 m pixels: hull share per pixel from a
    1 m raster, the instrument's blur, noise of 0.002."""
    fine = (SHAPE[0] * FINE, SHAPE[1] * FINE)
    transform = from_origin(shift[0], -shift[1], 10 / FINE, 10 / FINE)
    cover = rasterize([(h, 1) for h in hulls], out_shape=fine, transform=transform, dtype="uint8")
    share = cover.reshape(SHAPE[0], FINE, SHAPE[1], FINE).mean(axis=(1, 3))
    share = ndimage.gaussian_filter(share, BLUR_PX)
    nir = WATER_NIR + share * (SHIP_NIR - WATER_NIR) + rng.normal(0, 0.002, SHAPE)
    ndsi = WATER_NDSI + share * (SHIP_NDSI - WATER_NDSI)
    return nir, ndsi


def count(hulls, angle, rng, shift=(0.0, 0.0), berth=None) -> int:
    nir, ndsi = seen(hulls, rng, shift)
    berth = np.ones(SHAPE, bool) if berth is None else berth
    axis = np.full(SHAPE, np.deg2rad(angle))
    objects = _bright_objects(berth, nir, ndsi, P, 0, 0, axis)
    return sum(P.min_ship_px <= o[0] <= P.max_ship_px for o in objects)


ANGLES = [0, 13, 25, 45, 62, 90, 151]


@pytest.mark.parametrize("angle", ANGLES)
@pytest.mark.parametrize("gap", [15, 20, 25])
def test_three_ships_bow_to_stern_are_three(angle, gap):
    rng = np.random.default_rng(angle * 100 + gap)
    lengths = [135, 145, 140]
    starts = np.cumsum([0, lengths[0] + gap, lengths[1] + gap]) - 220
    hulls = [hull(n, 24, s + n / 2, 0, angle) for n, s in zip(lengths, starts, strict=True)]
    assert count(hulls, angle, rng, shift=(rng.uniform(0, 10), rng.uniform(0, 10))) == 3


@pytest.mark.parametrize("angle", ANGLES)
@pytest.mark.parametrize("gap", [15, 20, 25])
def test_three_ships_side_by_side_are_three(angle, gap):
    rng = np.random.default_rng(angle * 100 + gap + 1)
    beams = [28, 32, 25]
    offsets = [-(beams[0] + beams[1]) / 2 - gap, 0, (beams[1] + beams[2]) / 2 + gap]
    hulls = [hull(n, b, a, o, angle) for n, b, a, o in
             zip([150, 190, 120], beams, [10, -5, 20], offsets, strict=True)]  # fmt: skip
    assert count(hulls, angle, rng, shift=(rng.uniform(0, 10), rng.uniform(0, 10))) == 3


@pytest.mark.parametrize("angle", ANGLES)
@pytest.mark.parametrize(("length", "beam"), [(100, 15), (180, 25), (240, 40)])
def test_one_ship_is_one_whatever_its_slant(angle, length, beam):
    rng = np.random.default_rng(angle + length)
    for _ in range(3):  # other phases against the pixel lattice
        hulls = [hull(length, beam, 0, 0, angle)]
        assert count(hulls, angle, rng, shift=(rng.uniform(0, 10), rng.uniform(0, 10))) == 1


def test_a_ship_against_a_pier_is_one_and_the_pier_is_not_read():
    """The pier's pixels are not berth pixels (NaN in the image): neither a ship nor a gap."""
    rng = np.random.default_rng(5)
    angle = 25
    hulls = [hull(140, 22, 0, 0, angle)]
    nir, ndsi = seen(hulls, rng)
    pier = seen([hull(300, 30, 0, -30, angle)], rng)[0] > WATER_NIR + 0.02
    objects = _bright_objects(~pier, nir, ndsi, P, 0, 0, np.full(SHAPE, np.deg2rad(angle)))
    assert len(objects) == 1


def test_ships_closer_than_any_dip_are_cut_by_length():
    """Two 160 m ships bow to stern 5 m apart (no water a pixel sees): 325 m is longer than
    any ship of these ports, so it is two."""
    rng = np.random.default_rng(9)
    hulls = [hull(160, 30, -82.5, 0, 0), hull(160, 30, 82.5, 0, 0)]
    assert count(hulls, 0, rng) == 2
    # the same ships without the length rule are one
    params = ActivityParams(ship_max_length_m=400)
    nir, ndsi = seen(hulls, rng)
    objects = _bright_objects(np.ones(SHAPE, bool), nir, ndsi, params, 0, 0, np.zeros(SHAPE))
    assert len(objects) == 1


def test_split_ships_reads_the_berth_axis_not_the_lattice():
    # two ships side by side along x: cut across x's axis, never along
    image = np.zeros((9, 20))
    image[1:4, 2:18] = image[6:9, 2:18] = 0.13  # 20 m of water between (rows 4-5)
    rows, cols = np.nonzero(image)
    along = split_ships(rows, cols, image, 0.0)
    assert sorted(len(s) for s in along) == [48, 48]
    assert all(len(set(rows[s])) == 3 for s in along)  # each ship whole: three rows


def test_berth_axis_is_the_long_side():
    rect = list(rotate(box(0, 0, 160, 40), 25, origin=(0, 0)).exterior.coords)
    assert np.rad2deg(berth_axis(rect)) % 180 == pytest.approx(25)
    rect = list(box(0, 0, 50, 220).exterior.coords)
    assert np.rad2deg(berth_axis(rect)) % 180 == pytest.approx(90)
