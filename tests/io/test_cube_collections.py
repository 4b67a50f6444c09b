"""Collections without a Scene Classification load through the cube seam: a real Earth
Search Sentinel-2 L1C item (no SCL: no mask) and a real Earth Search Landsat Collection 2
Level-2 item (QA_PIXEL bits), their hrefs pointed at real rasters of the shared data."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import rowcol
from shapely.geometry import box

from nampo.errors import CubeError
from nampo.grid import grid_for_outline
from nampo.io.cube import load_cube, read_cube
from nampo.io.scenes import normalise
from nampo.products.masks import UNMASKED
from nampo.products.reflectance import to_reflectance
from nampo.run.work import mask_bands

L1C_BANDS = (("rededge1", "B05"), ("nir08", "B8A"), ("swir16", "B11"), ("swir22", "B12"))
L1C_FILES = {b: f"sentinel2_L1C_T18SVG_20160112_subset_{k}.jp2" for b, k in L1C_BANDS}
LANDSAT_BANDS = (("green", "B3"), ("red", "B4"), ("nir08", "B5"), ("swir16", "B6"))
LANDSAT_FILES = {b: f"landsat8_LC80200392015216LGN00_subset_{k}.tif" for b, k in LANDSAT_BANDS}
CLEAR_QA = 21824  # QA_PIXEL of clear land in Collection 2 (bits 6, 8, 10, 12, 14)


def _point_at(item: dict, files: dict[str, Path]) -> dict:
    """`item` with only the assets of `files`, pointed at them, their projection read
    from the files (the recorded item describes a whole tile of another place)."""
    item = copy.deepcopy(item)
    assets = {}
    for band, path in files.items():
        asset = item["assets"][band]
        with rasterio.open(path) as src:
            asset["href"] = str(path)
            asset["proj:epsg"] = src.crs.to_epsg()
            asset["proj:shape"] = list(src.shape)
            asset["proj:transform"] = list(src.transform)[:6]
        assets[band] = asset
    item["assets"] = assets
    item["properties"]["proj:epsg"] = assets[next(iter(files))]["proj:epsg"]
    return item


def _inner_grid(path: Path, margin: float = 0.25):
    """A site grid (from an outline) well inside a raster's footprint."""
    with rasterio.open(path) as src:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(src.crs, 4326, *src.bounds)
    dx, dy = (e - w) * margin, (n - s) * margin
    return grid_for_outline(box(w + dx, s + dy, w + 2 * dx, s + 2 * dy))


def _nearest(path: Path, grid) -> np.ndarray:
    """The file's DN at each grid pixel centre (same CRS here)."""
    x, y = grid.xy_coords()
    xx, yy = np.meshgrid(x, y)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == grid.epsg
        rows, cols = rowcol(src.transform, xx.ravel(), yy.ravel())
        data = src.read(1)
    return data[np.array(rows), np.array(cols)].reshape(grid.shape)


def test_l1c_item_without_scl_loads_unmasked(shared: Path):
    real = shared / "data" / "real"
    page = json.loads((real / "es_v1_search_cql2_cloudcover_page1.json").read_text())
    item = next(f for f in page["features"] if f["collection"] == "sentinel-2-l1c")
    item = _point_at(item, {b: real / f for b, f in L1C_FILES.items()})
    # the rasters are of 2016 (baseline 02.01: no radiometric offset)
    item["properties"].update(
        datetime="2016-01-12T15:50:00Z", **{"s2:processing_baseline": "02.01"}
    )
    for asset in item["assets"].values():
        asset["raster:bands"][0].pop("offset")
    scene = normalise(item)
    assert scene.mask_band is None and mask_bands([scene]) == []
    assert scene.bands["swir16"].offset == 0.0

    grid = _inner_grid(real / L1C_FILES["swir16"])
    assert grid.epsg == 32618
    bands = list(L1C_FILES)
    raw = load_cube([scene], grid, bands, chunk_px=64)
    ds = to_reflectance(raw, [scene]).compute()
    assert ds.attrs["mask_band"] == ""
    assert (ds["scl"].values == UNMASKED).all() and ds["clear"].values.all()
    for band in bands:
        want = _nearest(real / L1C_FILES[band], grid).astype("float32") * np.float32(1e-4)
        got = ds["reflectance"].sel(band=band).values[0]
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # read_cube (what a pipeline unit uses) gives the same cube
    same = read_cube([scene], grid, bands)
    np.testing.assert_array_equal(same.values, raw.values)


def test_landsat_item_masks_by_qa_pixel_bits(shared: Path, tmp_path: Path):
    real = shared / "data" / "real"
    files = {b: real / f for b, f in LANDSAT_FILES.items()}
    with rasterio.open(files["red"]) as src:
        profile = src.profile
        qa = np.full(src.shape, CLEAR_QA, dtype="uint16")
    qa[100:200, 100:200] |= 1 << 3  # cloud (high confidence)
    qa[300:400, 300:400] |= 1 << 4  # cloud shadow
    qa[:, :50] = 1  # fill
    profile.update(dtype="uint16", count=1, nodata=1)
    files["qa_pixel"] = tmp_path / "qa_pixel.tif"
    with rasterio.open(files["qa_pixel"], "w", **profile) as dst:
        dst.write(qa, 1)
    item = json.loads(
        (real / "es_v1_item_landsat-c2-l2_LC08_L2SP_033032_20231008_02_T1.json").read_text()
    )
    scene = normalise(_point_at(item, files))
    assert scene.mask_band == "qa_pixel" and mask_bands([scene]) == ["qa_pixel"]

    grid = grid_for_outline(box(-87.49, 30.71, -87.375, 30.775))  # over the cloud and the fill
    bands = ["green", "red", "nir08", "swir16", "qa_pixel"]
    ds = to_reflectance(load_cube([scene], grid, bands), [scene]).compute()
    want_qa = _nearest(files["qa_pixel"], grid)
    scl = ds["scl"].values[0]
    cloud = (want_qa >> 3) & 1 == 1
    shadow = ((want_qa >> 4) & 1 == 1) & ~cloud
    fill = want_qa == 1
    assert cloud.any() and shadow.any() and fill.any() and (~(cloud | shadow | fill)).any()
    assert (scl[cloud] == 9).all() and (scl[shadow] == 3).all() and (scl[fill] == 0).all()
    clear = ds["clear"].values[0]
    np.testing.assert_array_equal(clear, ~(cloud | shadow | fill))
    red = ds["reflectance"].sel(band="red").values[0]
    want = _nearest(files["red"], grid).astype("float32") * np.float32(2.75e-5) - np.float32(0.2)
    np.testing.assert_allclose(red[clear], want[clear], rtol=1e-5, atol=1e-6)
    assert np.isnan(red[~clear]).all()


def test_two_mask_bands_are_refused(shared: Path):
    real = shared / "data" / "real"
    name = "es_v1_item_landsat-c2-l2_LC08_L2SP_033032_20231008_02_T1.json"
    scene = normalise(json.loads((real / name).read_text()))
    grid = grid_for_outline(box(-105.2, 40.1, -105.19, 40.11))
    raw = load_cube([scene], grid, ["red"], check="off")
    raw = xr.concat([raw.assign_coords(band=[b]) for b in ("scl", "qa_pixel")], "band")
    with pytest.raises(CubeError, match="two mask bands"):
        to_reflectance(raw, [scene])
