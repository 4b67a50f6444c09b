"""nampo.io.cube and nampo.io.gdal, and the reflectance and same-day merge of
nampo.products.reflectance, on the rendered mini archive, computed on a real
multi-process Dask cluster (``LocalCluster(n_workers=2, processes=True)``, once per module).

Expected values come from outside the code under test: pixels read directly from the COGs
with rasterio, the items' own ``s2:processing_baseline`` / ``raster:bands``, the archive's
manifest (datatakes) and GDAL's own warper for a scene in another UTM zone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
import shutil
from contextlib import nullcontext
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import xarray as xr
from distributed import Client, LocalCluster
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject
from stackstac.rio_reader import AutoParallelRioReader

from nampo.errors import CubeError, CubeWarning
from nampo.io.cube import check_assets, load_cube, preflight, read_cube, skipped_scenes
from nampo.io.cube import stackstac_reader as reader_mod
from nampo.io.cube.odc import OdcDriver
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import normalise
from nampo.products.masks import DEFAULT_MASK_CLASSES
from nampo.products.reflectance import merge_same_day, to_reflectance
from nampo.sites import Site
from tests.conftest import shared_dir

# odc-stac's warp into a bare array (stackstac's and odc-geo's deprecation noise is
# filtered for every test in pyproject.toml): not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]

BANDS = ["red", "swir16", "scl"]  # a 10 m band, a 20 m band, the 20 m classes
SWITCH = np.datetime64("2022-01-25")


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def items(mini_archive) -> list[dict]:
    lines = mini_archive.items_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def scenes(items):
    return [normalise(item) for item in items]


@pytest.fixture(scope="module")
def site(mini_archive) -> Site:
    return Site.from_scenario(mini_archive.scenario)


@pytest.fixture(scope="module")
def lazy(scenes, site):
    return {name: load_cube(scenes, site.grid, BANDS, loader=name) for name in ("stackstac", "odc")}


@pytest.fixture(scope="module")
def computed(lazy, scenes, client):
    """Both loaders' cubes of the whole archive and the reflectance of the stackstac one,
    computed on the cluster in one go (the reflectance reuses the stackstac reads)."""
    reflectance = to_reflectance(lazy["stackstac"], scenes)
    return dask.compute(lazy["stackstac"], lazy["odc"], reflectance)


@pytest.fixture(scope="module")
def raw(computed):
    return {"stackstac": computed[0], "odc": computed[1]}


@pytest.fixture(scope="module")
def refl(computed):
    return computed[2]


def _by_id(scenes):
    return {s.id: s for s in scenes}


def _direct(href: str, x: float, y: float) -> int:
    """The DN of the file pixel that contains (x, y), read by rasterio (0 outside)."""
    with rasterio.open(href) as src:
        row, col = src.index(x, y)
        if not (0 <= row < src.height and 0 <= col < src.width):
            return 0
        return int(src.read(1, window=((row, row + 1), (col, col + 1)))[0, 0])


# --------------------------------------------------------------------------------------
# The grid, the coordinates, laziness
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", ["stackstac", "odc"])
def test_cube_is_exactly_the_site_grid(lazy, site, loader):
    cube, grid = lazy[loader], site.grid
    x, y = grid.xy_coords()
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.shape[2:] == grid.shape
    assert np.array_equal(cube.x.values, x) and np.array_equal(cube.y.values, y)
    assert CRS(cube.spatial_ref.attrs["crs_wkt"]) == grid.crs
    assert cube.attrs["crs"] == f"EPSG:{grid.epsg}"
    gt = [float(v) for v in cube.spatial_ref.attrs["GeoTransform"].split()]
    assert gt == [grid.x0, grid.resolution, 0.0, grid.y0, 0.0, -grid.resolution]
    # bounds from the pixel centres: the grid's bounds
    half = grid.resolution / 2
    assert (x[0] - half, y[-1] - half, x[-1] + half, y[0] + half) == grid.bounds

    assert list(cube.band.values) == BANDS and cube.dtype == np.uint16
    assert cube.chunks is not None  # dask-backed, nothing read yet
    times = cube.time.values
    assert times.dtype == np.dtype("datetime64[ns]") and (np.diff(times) >= np.timedelta64(0)).all()
    for name in ("id", "tile", "platform", "band"):
        assert cube[name].dtype.kind == "U", name
    assert set(cube.tile.values) == {"51SXC", "51SYC"}
    assert skipped_scenes(cube) == {}
    assert not any(v.dtype == object for v in cube.coords.values())


def test_chunks_are_tiles(scenes, site):
    cube = load_cube(scenes[:4], site.grid, BANDS, chunk_px=50)
    assert cube.chunks == ((1,) * 4, (1,) * 3, (50, 50, 20), (50, 50, 20))
    odc = load_cube(scenes[:4], site.grid, BANDS, chunk_px=50, loader="odc")
    assert odc.chunks == cube.chunks


# zarr 3 stores fixed-width unicode in v3 arrays but warns that the v3 spec lacks it.
@pytest.mark.filterwarnings("ignore:The data type \\(FixedLengthUTF32")
def test_to_zarr_accepts_everything(raw, refl, tmp_path):
    small = raw["stackstac"].isel(time=slice(0, 4))
    for fmt in (2, 3):
        small.to_dataset().to_zarr(tmp_path / f"raw{fmt}.zarr", zarr_format=fmt, consolidated=False)
        refl.isel(time=slice(0, 4)).to_zarr(
            tmp_path / f"refl{fmt}.zarr", zarr_format=fmt, consolidated=False
        )
    back = xr.open_zarr(tmp_path / "raw2.zarr", consolidated=False)
    assert list(back.id.values) == list(small.id.values)
    assert back.dn.dtype == np.uint16


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def test_values_equal_a_direct_read_of_the_cog(raw, scenes, site):
    """10 m: the file's pixel; 20 m: the 20 m pixel that holds the 10 m centre (nearest)."""
    cube, by_id = raw["stackstac"], _by_id(scenes)
    x, y = site.grid.xy_coords()
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, 120, 12), rng.integers(0, 120, 12)
    # corners and both sides of the 51SXC edge (its COG stops at column 64)
    rows = np.r_[rows, 0, 0, 119, 119, 60, 60]
    cols = np.r_[cols, 0, 119, 0, 119, 63, 64]
    checked = 0
    for t in (0, 1, 60, 61, 120, 121):
        scene = by_id[str(cube.id.values[t])]
        for band in BANDS:
            for r, c in zip(rows, cols, strict=True):
                want = _direct(scene.bands[band].href, x[c], y[r])
                assert int(cube.sel(band=band).values[t, r, c]) == want, (scene.id, band, r, c)
                checked += want != 0
    assert checked > 100


def test_20m_band_is_a_2x2_replication(raw, scenes):
    """Nearest on a shared lattice: each 20 m pixel fills exactly one 2x2 block."""
    swir = raw["stackstac"].sel(band="swir16").values
    scene = _by_id(scenes)[str(raw["stackstac"].id.values[1])]
    with rasterio.open(scene.bands["swir16"].href) as src:
        native = src.read(1)
    assert np.array_equal(swir[1], np.repeat(np.repeat(native, 2, 0), 2, 1))


@pytest.mark.parametrize(
    ("dx", "dy", "width"),
    [
        (-37, 23, 100),  # on the lattice, odd offsets, partly off the files (masked)
        (1, -1, 60),  # one 10 m pixel: every 20 m pixel split between two grid windows
        (0.5, 0, 50),  # half a pixel off the lattice: warped, by stackstac's own reader
    ],
)
def test_lattice_reads_equal_stackstacs_warped_reads(scenes, site, dx, dy, width, monkeypatch):
    """AlignedReader (a plain read, pixels repeated) gives what stackstac's WarpedVRT
    gives, on windows that start anywhere on the lattice and run off the files' edges."""
    res = site.grid.resolution
    grid = dataclasses.replace(
        site.grid,
        x0=site.grid.x0 + dx * res,
        y0=site.grid.y0 + dy * res,
        width=width,
        height=width + 7,
    )
    mine = scenes[:6]
    plain_reads = []
    lattice_read = reader_mod._LatticeDataset.read

    def counted(self, *args, **kwargs):
        plain_reads.append(1)
        return lattice_read(self, *args, **kwargs)

    monkeypatch.setattr(reader_mod._LatticeDataset, "read", counted)
    ours = load_cube(mine, grid, BANDS, chunk_px=32).compute(scheduler="synchronous")
    assert bool(plain_reads) == (dx == int(dx))  # off the lattice: no plain read
    monkeypatch.setattr(reader_mod, "AlignedReader", AutoParallelRioReader)
    warped = load_cube(mine, grid, BANDS, chunk_px=32).compute(scheduler="synchronous")
    assert np.array_equal(ours.values, warped.values)
    assert (ours.values != 0).mean() > 0.3
    if dx < 0:  # the grid starts west of every file: those pixels are nodata
        assert (ours.values[..., :37] == 0).all()


def test_stackstac_and_odc_agree_bit_for_bit(raw):
    a, b = raw["stackstac"], raw["odc"]
    assert list(a.id.values) == list(b.id.values)
    assert np.array_equal(a.time.values, b.time.values)
    assert a.dtype == b.dtype == np.uint16
    assert np.array_equal(a.values, b.values)
    assert (a.values != 0).mean() > 0.5


def test_reflectance_applies_each_scenes_offset(raw, refl, scenes):
    dn = raw["stackstac"].sel(band=["red", "swir16"]).values.astype(np.float64)
    r = refl.reflectance.values
    assert refl.reflectance.dtype == np.float32
    after = refl.time.values >= SWITCH
    assert after.any() and (~after).any()
    by_id = _by_id(scenes)
    for t, scene_id in enumerate(refl.id.values):
        baseline = by_id[str(scene_id)].processing_baseline
        assert (baseline >= "04.00") == after[t]
    ok = np.isfinite(r)
    assert ok[after].sum() > 10_000 and ok[~after].sum() > 10_000
    expected = np.where(after[:, None, None, None], dn * 1e-4 - 0.1, dn * 1e-4)
    np.testing.assert_allclose(r[ok], expected[ok], rtol=0, atol=2e-7)


def test_scl_masks_clouds_and_keeps_coal_and_ice(raw, refl):
    scl = raw["stackstac"].sel(band="scl").values
    dn = raw["stackstac"].sel(band="red").values
    r = refl.reflectance.sel(band="red").values
    masked = np.isin(scl, DEFAULT_MASK_CLASSES)
    assert masked.any() and np.isnan(r[masked]).all()
    for kept in (2, 11):  # dark area (coal), snow and ice
        where = (scl == kept) & (dn != 0)
        assert where.sum() > 100, kept
        assert np.isfinite(r[where]).all(), kept
    assert np.array_equal(refl.clear.values, (scl != 0) & ~masked)
    assert np.array_equal(refl.scl.values, scl) and refl.scl.dtype == np.uint8
    assert np.isnan(r[dn == 0]).all()


def test_nothing_is_float64(lazy, refl, scenes):
    lazy_refl = to_reflectance(lazy["odc"], scenes)
    merged = merge_same_day(lazy_refl)
    for ds in (refl, lazy_refl, merged):
        for name, var in ds.data_vars.items():
            assert var.dtype != np.float64, name
    assert merged.reflectance.chunks is not None  # still lazy


def test_merge_same_day_gives_one_step_per_datatake(raw, mini_archive):
    cube = raw["stackstac"]
    merged = merge_same_day(cube)
    assert merged.sizes["time"] == mini_archive.manifest()["datatakes"]
    assert merged.dtype == np.uint16
    assert len(set(merged.id.values)) == merged.sizes["time"]

    pairs = 0
    for t, (ids, tiles) in enumerate(zip(merged.id.values, merged.tile.values, strict=True)):
        members = str(ids).split("+")
        parts = cube.isel(time=np.flatnonzero(np.isin(cube.id.values, members)))
        assert merged.time.values[t] == parts.time.values.min()
        if tiles != "51SXC+51SYC":
            assert np.array_equal(merged.values[t], parts.values[0])
            continue
        pairs += 1
        sxc = parts.values[list(parts.tile.values).index("51SXC")]
        syc = parts.values[list(parts.tile.values).index("51SYC")]
        got = merged.values[t]
        both = (sxc != 0) & (syc != 0)
        assert both.any()
        assert np.array_equal(got[both], syc[both])  # identical where both have data
        assert np.array_equal(got[syc != 0], syc[syc != 0])
        only_sxc = (sxc != 0) & (syc == 0)
        assert np.array_equal(got[only_sxc], sxc[only_sxc])
    assert pairs >= 70


def test_merge_same_day_on_reflectance(refl):
    merged = merge_same_day(refl)
    assert merged.sizes["time"] < refl.sizes["time"]
    assert merged.clear.dtype == bool and merged.reflectance.dtype == np.float32
    assert merged.spatial_ref.attrs == refl.spatial_ref.attrs
    # a merged step is clear where either tile was
    t = int(np.flatnonzero(np.char.count(merged.tile.values.astype(str), "+"))[0])
    members = str(merged.id.values[t]).split("+")
    parts = refl.isel(time=np.flatnonzero(np.isin(refl.id.values, members)))
    assert np.array_equal(merged.clear.values[t], parts.clear.values.any(axis=0))


# --------------------------------------------------------------------------------------
# Catalog shapes and CRSs stackstac alone does not handle
# --------------------------------------------------------------------------------------


def _planetary_computer_shape(es_item: dict) -> dict:
    """The mini item in the shape of a real Planetary Computer item: asset keys B04 / B11
    / SCL, no raster:bands, ``proj:code`` only (as pystac 1.15 leaves it)."""
    real = json.loads(
        (shared_dir() / "data" / "real" / "pc_items_sentinel-2-l2a_4items.json").read_text()
    )[0]
    pc = copy.deepcopy(real)
    props = es_item["properties"]
    pc["id"] = es_item["id"] + "_pc"
    pc["geometry"], pc["bbox"] = es_item["geometry"], es_item["bbox"]
    pc["properties"].pop("proj:epsg", None)
    pc["properties"].update(
        {
            "datetime": props["datetime"],
            "platform": "Sentinel-2" + props["platform"][-1].upper(),
            "proj:code": "EPSG:32651",
            "s2:mgrs_tile": props["grid:code"].split("-")[1],
            "s2:processing_baseline": props["s2:processing_baseline"],
        }
    )
    pc["assets"] = {}
    for es_key, pc_key in (("red", "B04"), ("swir16", "B11"), ("scl", "SCL")):
        template = copy.deepcopy(real["assets"][pc_key])
        es = es_item["assets"][es_key]
        template.pop("proj:epsg", None)
        template.update(
            href=es["href"],
            **{"proj:shape": es["proj:shape"], "proj:transform": es["proj:transform"]},
        )
        template.pop("proj:bbox", None)
        assert "raster:bands" not in template
        pc["assets"][pc_key] = template
    return pc


@pytest.mark.parametrize("loader", ["stackstac", "odc"])
def test_planetary_computer_items_give_the_same_cube(items, site, loader, client):
    es_items = [i for i in items if i["properties"]["s2:processing_baseline"] >= "04.00"][:2]
    es = [normalise(i) for i in es_items]
    pc = [normalise(_planetary_computer_shape(i)) for i in es_items]
    assert pc[0].bands["red"].key == "B04" and pc[0].bands["red"].offset == -0.1
    a = load_cube(es, site.grid, BANDS, loader=loader)
    b = load_cube(pc, site.grid, BANDS, loader=loader)
    assert np.array_equal(a.values, b.values) and (a.values != 0).any()
    ra, rb = to_reflectance(a, es).reflectance.values, to_reflectance(b, pc).reflectance.values
    np.testing.assert_array_equal(ra, rb)


def test_scene_in_another_utm_zone_is_warped_onto_the_grid(items, site, tmp_path, client):
    """A scene in EPSG:32652 (the next UTM zone, ``proj:code`` only): both loaders warp it
    onto the 32651 grid exactly as GDAL's own warper does (nearest)."""
    grid = site.grid
    item = copy.deepcopy(next(i for i in items if "51SYC" in i["id"]))
    item["id"] += "_32652"
    item["properties"].pop("proj:epsg")
    item["properties"]["proj:code"] = "EPSG:32652"
    expected = {}
    for key in BANDS:
        asset = item["assets"][key]
        dst = tmp_path / Path(asset["href"]).name
        with rasterio.open(asset["href"]) as src:
            transform, width, height = calculate_default_transform(
                src.crs, "EPSG:32652", src.width, src.height, *src.bounds, resolution=src.res
            )
            profile = src.profile | {
                "crs": "EPSG:32652",
                "transform": transform,
                "width": width,
                "height": height,
            }
            with rasterio.open(dst, "w", **profile) as out:
                reproject(
                    rasterio.band(src, 1), rasterio.band(out, 1), resampling=Resampling.nearest
                )
        with rasterio.open(dst) as src:
            want = np.zeros(grid.shape, np.uint16)
            reproject(
                rasterio.band(src, 1),
                want,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                src_nodata=0,
                dst_nodata=0,
                resampling=Resampling.nearest,
            )
        expected[key] = want
        asset.update(
            href=str(dst), **{"proj:shape": [height, width], "proj:transform": list(transform)[:6]}
        )
    scene = normalise(item)
    assert scene.epsg == 32652
    for loader in ("stackstac", "odc"):
        cube = load_cube([scene], grid, BANDS, loader=loader).values[0]
        for b, key in enumerate(BANDS):
            assert (expected[key] != 0).mean() > 0.9
            # same GDAL warper, same nearest rule: the same pixels
            assert np.array_equal(cube[b], expected[key]), (loader, key)


def test_a_band_the_catalog_puts_off_the_grid(items, site, scenes):
    """A documented difference: when an asset's ``proj:transform`` is wrong, stackstac
    trusts the catalog (skips the asset, and drops the band if no item has it on the
    bounds: the seam puts it back as nodata), odc-stac reads the file wherever the item's
    footprint covers the grid (and the file's own georeferencing puts the pixels right)."""
    item = copy.deepcopy(items[1])
    transform = item["assets"]["swir16"]["proj:transform"]
    transform[2] += 100_000  # the catalog says the asset is 100 km east
    scene = normalise(item)
    right = load_cube([_by_id(scenes)[item["id"]]], site.grid, BANDS).values[0]
    cubes = {
        loader: load_cube([scene], site.grid, BANDS, loader=loader)
        for loader in ("stackstac", "odc")
    }
    for cube in cubes.values():
        assert list(cube.band.values) == BANDS and cube.shape == (1, 3, 120, 120)
    st, odc = cubes["stackstac"].values[0], cubes["odc"].values[0]
    assert (st[1] == 0).all() and np.array_equal(st[[0, 2]], right[[0, 2]])
    assert np.array_equal(odc, right)


# --------------------------------------------------------------------------------------
# Unreadable scenes are reported, not fatal
# --------------------------------------------------------------------------------------


def _relocated(item: dict, folder: Path) -> dict:
    """`item` with its COGs copied to `folder` (so they can be damaged)."""
    source = Path(item["assets"]["red"]["href"]).parent
    shutil.copytree(source, folder)
    out = copy.deepcopy(item)
    for asset in out["assets"].values():
        asset["href"] = str(folder / Path(asset["href"]).name)
    return out


def _bad_scenes(items, tmp_path):
    """Five scenes of 51SYC: truncated red, deleted SCL, no swir16 asset, two sound ones."""
    syc = [i for i in items if "51SYC" in i["id"]]
    truncated = _relocated(syc[0], tmp_path / "truncated")
    red = Path(truncated["assets"]["red"]["href"])
    os.truncate(red, red.stat().st_size // 2)
    gone = _relocated(syc[1], tmp_path / "gone")
    Path(gone["assets"]["scl"]["href"]).unlink()
    no_key = copy.deepcopy(syc[2])
    del no_key["assets"]["swir16"]
    good = syc[3:5]
    return [normalise(i) for i in (truncated, gone, no_key, *good)]


def _assert_bad_scenes_reported(cube, scenes):
    truncated, gone, no_key, *good = scenes
    report = skipped_scenes(cube)
    assert set(report) == {truncated.id, gone.id, no_key.id}
    assert report[truncated.id].startswith("red: block (0, 0) ends at byte")
    assert "SCL.tif" in report[gone.id] and report[gone.id].startswith("scl:")
    assert report[no_key.id] == "no asset for band(s) swir16"
    assert list(cube.id.values) == [s.id for s in good]
    assert (cube.values != 0).mean() > 0.9


def test_bad_assets_are_skipped_and_reported(items, site, tmp_path, client):
    scenes = _bad_scenes(items, tmp_path)
    for loader in ("stackstac", "odc"):
        with pytest.warns(CubeWarning, match="3 of 5 scenes"):
            cube = load_cube(scenes, site.grid, BANDS, loader=loader)
        _assert_bad_scenes_reported(cube, scenes)


def test_corrupt_blocks_found_by_a_read_check_and_survived_without_one(items, site, tmp_path):
    syc = [i for i in items if "51SYC" in i["id"]]
    corrupt = _relocated(syc[0], tmp_path / "corrupt")
    red = Path(corrupt["assets"]["red"]["href"])
    data = bytearray(red.read_bytes())
    data[len(data) // 3 :] = b"\x55" * (len(data) - len(data) // 3)  # same size, bad DEFLATE
    red.write_bytes(bytes(data))
    scenes = [normalise(corrupt), normalise(syc[1])]

    assert check_assets(scenes, site.grid, BANDS, level="header") == {}
    report = check_assets(scenes, site.grid, BANDS, level="read")
    assert list(report) == [corrupt["id"]] and report[corrupt["id"]].startswith("red: cannot read")

    # Without a pre-flight the block error becomes nodata (READ_ERRORS_AS_NODATA /
    # fail_on_error=False) instead of failing the computation; other bands are intact.
    for loader in ("stackstac", "odc"):
        with pytest.warns(UserWarning) if loader == "stackstac" else nullcontext():
            values = (
                load_cube(scenes, site.grid, BANDS, loader=loader, check="off")
                .compute(scheduler="threads")
                .values
            )
        assert (values[0, 0] == 0).all() and (values[0, 1:] != 0).any()
        assert (values[1] != 0).any()


def test_no_readable_scene_gives_an_empty_cube(items, site, tmp_path):
    gone = _relocated(items[1], tmp_path / "gone")
    Path(gone["assets"]["red"]["href"]).unlink()
    with pytest.warns(CubeWarning):
        cube = load_cube([normalise(gone)], site.grid, BANDS)
    assert cube.shape == (0, 3, 120, 120) and cube.dtype == np.uint16
    assert list(skipped_scenes(cube)) == [gone["id"]]
    assert merge_same_day(cube).sizes["time"] == 0


# --------------------------------------------------------------------------------------
# read_cube: the same cube, read into memory, each asset opened once when all are sound
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", ["stackstac", "odc"])
def test_read_cube_is_the_computed_lazy_cube(raw, scenes, site, loader, monkeypatch):
    def no_preflight(*args, **kwargs):
        raise AssertionError("the pre-flight opened an asset although every read succeeded")

    monkeypatch.setattr(preflight, "_check_asset", no_preflight)
    cube = read_cube(scenes, site.grid, BANDS, loader=loader)
    assert isinstance(cube.data, np.ndarray)
    xr.testing.assert_identical(cube, raw[loader])  # values, coords and attrs


@pytest.mark.parametrize("loader", ["stackstac", "odc"])
def test_read_cube_reports_bad_assets_like_load_cube(items, site, tmp_path, loader):
    scenes = _bad_scenes(items, tmp_path)
    with pytest.warns(CubeWarning, match="3 of 5 scenes"):
        cube = read_cube(scenes, site.grid, BANDS, loader=loader)
    _assert_bad_scenes_reported(cube, scenes)
    with pytest.warns(CubeWarning):
        lazy = load_cube(scenes, site.grid, BANDS, loader=loader)
    xr.testing.assert_identical(cube, lazy.compute(scheduler="synchronous"))


def test_read_cube_keeps_a_missing_asset_key_out_without_a_failed_read(
    items, site, scenes, monkeypatch
):
    """An item without one band's asset is left out by the item-level check (no I/O);
    the others are read in one pass."""

    def no_preflight(*args, **kwargs):
        raise AssertionError("the pre-flight opened an asset although every read succeeded")

    monkeypatch.setattr(preflight, "_check_asset", no_preflight)
    no_key = copy.deepcopy(next(i for i in items if "51SYC" in i["id"]))
    del no_key["assets"]["swir16"]
    mine = [normalise(no_key), *[s for s in scenes[:4] if s.id != no_key["id"]]]
    with pytest.warns(CubeWarning, match=f"1 of {len(mine)} scenes"):
        cube = read_cube(mine, site.grid, BANDS)
    assert skipped_scenes(cube) == {no_key["id"]: "no asset for band(s) swir16"}
    assert no_key["id"] not in set(cube.id.values) and cube.sizes["time"] == len(mine) - 1


def test_read_cube_on_a_corrupt_block_follows_the_check_level(items, site, tmp_path):
    """A block that cannot be decoded, in a file whose header is sound: the read fails,
    the pre-flight runs. At level ``header`` it finds nothing and the block becomes
    nodata (as with load_cube); at level ``read`` the scene is left out."""
    syc = [i for i in items if "51SYC" in i["id"]]
    corrupt = _relocated(syc[0], tmp_path / "corrupt")
    red = Path(corrupt["assets"]["red"]["href"])
    data = bytearray(red.read_bytes())
    data[len(data) // 3 :] = b"\x55" * (len(data) - len(data) // 3)
    red.write_bytes(bytes(data))
    scenes = [normalise(corrupt), normalise(syc[1])]

    with pytest.warns(UserWarning, match="red.tif|B04"):
        cube = read_cube(scenes, site.grid, BANDS, check="header")
    assert skipped_scenes(cube) == {}
    values = cube.values
    assert (values[0, 0] == 0).all() and (values[0, 1:] != 0).any() and (values[1] != 0).any()

    with pytest.warns(CubeWarning, match="1 of 2 scenes"):
        cube = read_cube(scenes, site.grid, BANDS, check="read")
    assert list(skipped_scenes(cube)) == [corrupt["id"]]
    assert list(cube.id.values) == [syc[1]["id"]]


def test_bad_arguments_name_the_value(scenes, site):
    with pytest.raises(CubeError, match="unknown loader 'gdal'"):
        load_cube(scenes[:1], site.grid, BANDS, loader="gdal")  # type: ignore[arg-type]
    with pytest.raises(CubeError, match="given twice"):
        load_cube(scenes[:1] * 2, site.grid, BANDS)
    with pytest.raises(CubeError, match="requested twice"):
        load_cube(scenes[:1], site.grid, ["red", "red"])
    cube = load_cube(scenes[:1], site.grid, ["scl"])
    with pytest.raises(CubeError, match="no band but its mask"):
        to_reflectance(cube, scenes)


# --------------------------------------------------------------------------------------
# GDAL settings travel with the load
# --------------------------------------------------------------------------------------


def test_gdal_settings_are_frozen_picklable_and_layered():
    settings = GdalSettings(http_max_retry=3, extra=(("AWS_NO_SIGN_REQUEST", "YES"),))
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert hash(settings) == hash(
        GdalSettings(http_max_retry=3, extra=(("AWS_NO_SIGN_REQUEST", "YES"),))
    )
    with pytest.raises(AttributeError):
        settings.http_max_retry = 4  # type: ignore[misc]
    opts = settings.always_options()
    assert opts["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert opts["GDAL_HTTP_MAX_RETRY"] == "3" and opts["GDAL_NUM_THREADS"] == "1"
    assert opts["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"] == ".tif,.tiff,.TIF,.TIFF"
    assert opts["AWS_NO_SIGN_REQUEST"] == "YES"
    assert settings.open_options()["VSI_CACHE"] == "YES"
    assert settings.read_options()["VSI_CACHE"] == "FALSE"
    assert settings.layers()["read"] == {"VSI_CACHE": "FALSE"}
    with settings.env("read"):
        assert rasterio.env.getenv()["GDAL_HTTP_MAX_RETRY"] == "3"
    with pytest.raises(ValueError, match="num_threads"):
        GdalSettings(num_threads=0)
    assert GdalSettings.from_mapping({"num_threads": "ALL_CPUS"}).num_threads == "ALL_CPUS"
    with pytest.raises(ValueError, match="unknown GDAL settings"):
        GdalSettings.from_mapping({"retries": 3})

    # both loaders get them per load, picklable into the graph
    env = pickle.loads(pickle.dumps(reader_mod._stackstac_env(settings)))
    with env.read:
        assert rasterio.env.getenv()["VSI_CACHE"] == "FALSE"
    driver = pickle.loads(pickle.dumps(OdcDriver(settings)))
    assert driver.capture_env()["GDAL_HTTP_MAX_RETRY"] == "3"
