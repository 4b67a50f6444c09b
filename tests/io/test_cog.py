"""Tests of nampo.io.cog: the files are valid COGs and keep every pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rio_cogeo.cogeo import cog_validate

from nampo.io.cog import write_cog

EPSG = 32651
# The three grids of a rendered scene: 10, 20 and 60 m views of one 10 km x 6 km site.
GRIDS = {
    10: (600, 1000),
    20: (300, 500),
    60: (100, 167),
}


def _transform(res: int) -> Affine:
    return Affine(res, 0, 349980.0, 0, -res, 4290000.0)


def _reflectance(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Smooth field plus noise in the L2A range, with a nodata (0) strip on the left."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    a = 1500 + 900 * np.sin(x / 17.0) * np.cos(y / 11.0) + rng.normal(0, 60, shape)
    a = a.clip(1, 30000).astype("uint16")
    a[:, : shape[1] // 7] = 0
    return a


def _assert_valid_cog(path: Path) -> None:
    valid, errors, warnings = cog_validate(str(path), quiet=True)
    assert errors == []
    assert warnings == []
    assert valid


@pytest.mark.parametrize("res", sorted(GRIDS))
def test_reflectance_cog_is_valid_and_exact(tmp_path, res):
    shape = GRIDS[res]
    data = _reflectance(shape)
    path = tmp_path / "B04.tif"
    write_cog(path, data, _transform(res), EPSG)

    _assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == EPSG
        assert src.transform == _transform(res)
        assert (src.height, src.width, src.count) == (*shape, 1)
        assert src.dtypes == ("uint16",)
        assert src.nodata == 0
        assert src.profile["tiled"]
        assert src.block_shapes == [(256, 256)]
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["LAYOUT"] == "COG"
        assert structure["COMPRESSION"] == "DEFLATE"
        assert structure["PREDICTOR"] == "2"
        np.testing.assert_array_equal(src.read(1), data)
        overviews = src.overviews(1)
    # GDAL halves until the image fits in one 256 px tile: 1000x600 -> 2, 4; 500x300 -> 2;
    # 167x100 already fits, so it gets none (and needs none).
    expected = {10: [2, 4], 20: [2], 60: []}[res]
    assert overviews == expected
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_small_image_gets_overviews_with_small_blocks(tmp_path):
    shape = GRIDS[60]
    data = _reflectance(shape)
    path = tmp_path / "B01.tif"
    write_cog(path, data, _transform(60), EPSG, blocksize=64)
    _assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.block_shapes == [(64, 64)]
        assert src.overviews(1) == [2, 4]
        np.testing.assert_array_equal(src.read(1), data)


def test_average_overview_of_reflectance(tmp_path):
    data = np.full((512, 512), 1000, "uint16")
    data[0:2, 0:2] = [[1000, 2000], [3000, 4000]]
    path = tmp_path / "B02.tif"
    write_cog(path, data, _transform(10), EPSG)
    with rasterio.open(path, overview_level=0) as ovr:
        assert ovr.shape == (256, 256)
        assert ovr.read(1)[0, 0] == 2500


def test_scl_overviews_keep_class_codes(tmp_path):
    """Nearest resampling: every overview pixel is one of the classes of the full image."""
    rng = np.random.default_rng(1)
    scl = rng.choice(np.array([0, 2, 4, 5, 6, 8, 9], "uint8"), size=GRIDS[20])
    path = tmp_path / "SCL.tif"
    write_cog(path, scl, _transform(20), EPSG, resampling="nearest")
    _assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.dtypes == ("uint8",)
        assert src.nodata == 0
        np.testing.assert_array_equal(src.read(1), scl)
    with rasterio.open(path, overview_level=0) as ovr:
        assert set(np.unique(ovr.read(1))) <= set(np.unique(scl))


def test_visual_rgb(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(1, 256, size=(3, *GRIDS[10]), dtype="uint8")
    path = tmp_path / "TCI.tif"
    write_cog(path, rgb, _transform(10), EPSG)
    _assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.count == 3
        assert src.dtypes == ("uint8",) * 3
        assert src.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        assert src.overviews(1) == [2, 4]
        np.testing.assert_array_equal(src.read(), rgb)


def test_no_nodata(tmp_path):
    path = tmp_path / "AOT.tif"
    write_cog(path, _reflectance(GRIDS[20]), _transform(20), EPSG, nodata=None)
    with rasterio.open(path) as src:
        assert src.nodata is None


def test_overwrites_existing_file(tmp_path):
    path = tmp_path / "B03.tif"
    write_cog(path, _reflectance(GRIDS[20], seed=1), _transform(20), EPSG)
    second = _reflectance(GRIDS[20], seed=2)
    write_cog(path, second, _transform(20), EPSG)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), second)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": np.zeros(10, "uint16")}, "2-D"),
        ({"data": np.zeros((10, 10), "int64")}, "dtype"),
        ({"resampling": "median-ish"}, "resampling"),
        ({"blocksize": 100}, "blocksize"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"data": np.zeros((10, 10), "uint16"), **kwargs}
    with pytest.raises(ValueError, match=message):
        write_cog(tmp_path / "x.tif", args.pop("data"), _transform(10), EPSG, **args)
    assert not list(tmp_path.iterdir())


def test_multiband_int32_without_nodata(tmp_path):
    """A stack of class and day-number layers (as the scenario's truth files are)."""
    rng = np.random.default_rng(3)
    stack = rng.integers(-1, 4000, size=(4, *GRIDS[20]), dtype="int32")
    path = tmp_path / "events.tif"
    write_cog(path, stack, _transform(20), EPSG, nodata=None, resampling="nearest")
    _assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.count == 4 and src.nodata is None
        assert src.dtypes == ("int32",) * 4
        np.testing.assert_array_equal(src.read(), stack)
