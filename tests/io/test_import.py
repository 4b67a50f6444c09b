"""`nampo import` on one real OSCD city (Paris: two Sentinel-2 L1C scenes in EPSG:4326):
COGs and sentinel-2-l1c items in the local STAC API, found by the pipeline's search on a
site made from the city's outline; and after the pipeline, the city's labelled changed
pixels land where the store's change products put the change."""

from __future__ import annotations

import datetime as dt
import glob
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, reproject
from rio_cogeo.cogeo import cog_validate

from nampo.analysis.before_after import store_pair_change
from nampo.cli import main
from nampo.errors import NampoError
from nampo.io.importer import SceneFiles, import_scenes
from nampo.io.scenes import normalise
from nampo.io.store import Store
from nampo.run.plan import CatalogSpec, find_scenes
from nampo.run.work import mask_bands
from nampo.sites import Site

pytestmark = pytest.mark.services

CITY = "paris"
DATES = (dt.date(2016, 11, 30), dt.date(2017, 11, 7))
BANDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
         "swir22": "B12"}  # fmt: skip


@pytest.fixture(scope="module")
def city(shared: Path) -> Path:
    path = shared / "data" / "oscd" / CITY
    if not path.is_dir():
        pytest.skip("OSCD data not available")
    return path


@pytest.fixture(scope="module")
def imported(city: Path, stac_api, stac_home: Path, tmp_path_factory) -> dict:
    """Paris imported by the command line into the session's STAC API."""
    out = tmp_path_factory.mktemp("import") / CITY
    mp = pytest.MonkeyPatch()
    mp.setenv("NAMPO_HOME", str(stac_home))
    try:
        code = main(
            [
                "import", CITY, "--out", str(out),
                "--scene", f"{city / 'imgs_1'}={DATES[0]}",
                "--scene", f"{city / 'imgs_2'}={DATES[1]}",
            ]
        )  # fmt: skip
    finally:
        mp.undo()
    assert code == 0
    items = [json.loads(line) for line in (out / "items.ndjson").read_text().splitlines()]
    return {"out": out, "items": items}


@pytest.fixture(scope="module")
def site(city: Path) -> Site:
    outline = json.loads((city / f"{CITY}.geojson").read_text())
    return Site.from_outline(CITY, outline, baseline=(DATES[0], DATES[0]), tile_px=256)


def test_items_are_earth_search_l1c_with_cogs_of_the_same_pixels(imported, city: Path):
    items = imported["items"]
    assert [i["id"] for i in items] == ["S2A_PARIS_20161130_0_L1C", "S2_PARIS_20171107_0_L1C"]
    assert [i["properties"]["datetime"][:10] for i in items] == [str(d) for d in DATES]
    for item, folder in zip(items, ("imgs_1", "imgs_2"), strict=True):
        assert item["collection"] == "sentinel-2-l1c"
        assert set(item["assets"]) == set(BANDS)
        scene = normalise(item)
        assert scene.epsg == 4326 and scene.mask_band is None
        assert (scene.bands["red"].scale, scene.bands["red"].offset) == (1e-4, 0.0)
        for key, esa in BANDS.items():
            asset = item["assets"][key]
            href = Path(asset["href"])
            assert href.is_absolute() and href.parent.parent.parent == imported["out"]
            valid, errors, _ = cog_validate(str(href), quiet=True)
            assert valid, errors
            [source] = glob.glob(str(city / folder / f"*_{esa}.tif"))
            with rasterio.open(href) as cog, rasterio.open(source) as src:
                assert cog.crs == src.crs and cog.transform == src.transform
                assert list(cog.shape) == asset["proj:shape"]
                np.testing.assert_array_equal(cog.read(1), src.read(1))
        # the footprint is that of the 10 m bands, in lon/lat
        with rasterio.open(item["assets"]["blue"]["href"]) as src:
            assert item["bbox"] == pytest.approx(list(src.bounds), abs=1e-9)


def test_the_pipeline_search_finds_the_imported_scenes(imported, stac_api, site: Site):
    spec = CatalogSpec("local", stac_api.url, collection="sentinel-2-l1c")
    month = DATES[1].replace(day=1)
    scenes = find_scenes(site, month, month, spec)
    assert [s.id for s in scenes] == [i["id"] for i in imported["items"]]
    assert mask_bands(scenes) == []
    # the default collection (Sentinel-2 L2A) does not hold them
    other = find_scenes(site, month, month, CatalogSpec("local", stac_api.url))
    assert not [s for s in other if s.collection == "sentinel-2-l1c"]


def test_bad_folders_are_refused_before_writing(city: Path, tmp_path: Path):
    out = tmp_path / "x"
    with pytest.raises(NampoError, match="no GeoTIFF named by its band"):
        import_scenes("x", [SceneFiles(city / "cm", dt.datetime(2016, 1, 1))], out)
    with pytest.raises(NampoError, match="two scenes of one day"):
        twice = [SceneFiles(city / "imgs_2", dt.datetime(2017, 11, 7))] * 2
        import_scenes("x", twice, out)
    assert not out.exists() and not list(tmp_path.iterdir())


def _label_on_grid(city: Path, site: Site) -> np.ndarray:
    """The label (1 no change, 2 change, on imgs_1's pixels) reprojected onto the grid."""
    with rasterio.open(city / "cm" / f"{CITY}-cm.tif") as src:
        label = src.read(1)
    [b02] = glob.glob(str(city / "imgs_1" / "*_B02.tif"))
    with rasterio.open(b02) as ref:
        transform, crs = ref.transform, ref.crs
    out = np.zeros(site.grid.shape, "uint8")
    reproject(label, out, src_transform=transform, src_crs=crs, src_nodata=0,
              dst_transform=site.grid.transform, dst_crs=site.grid.crs, dst_nodata=0,
              resampling=Resampling.nearest)  # fmt: skip
    return out


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # OSCD labels
def test_labelled_changes_land_where_the_change_products_put_them(
    imported, stac_home: Path, site: Site, city: Path, tmp_path: Path
):
    """Through the pipeline (search, cube reprojecting EPSG:4326 onto the UTM grid,
    composites, store): the change-vector magnitude is highest on the labelled changed
    pixels with the label where it is, not shifted by a pixel or more, and the
    before/after mask finds labelled change far above chance, not the clouds."""
    month = DATES[1].replace(day=1)
    store = Store(tmp_path / "paris.zarr")
    mp = pytest.MonkeyPatch()
    mp.setenv("NAMPO_HOME", str(stac_home))
    try:  # the command line, as an analyst runs it: the site from its outline alone
        code = main(
            [
                "process", "--outline", str(city / f"{CITY}.geojson"), "--baseline", "2016-11",
                "--collection", "sentinel-2-l1c", "--first", "2017-11", "--last", "2017-11",
                "--store", store.url, "--workers", "0",
            ]
        )  # fmt: skip
    finally:
        mp.undo()
    assert code == 0
    ds = store.open()
    assert ds.sizes["x"] == site.grid.width and ds.sizes["y"] == site.grid.height
    cva = ds["cva_base"].sel(time=f"{month:%Y-%m}").isel(time=0).values
    label = _label_on_grid(city, site)
    changed = label == 2
    assert changed.sum() > 300 and np.isfinite(cva[label > 0]).mean() > 0.99

    def contrast(dy: int, dx: int) -> float:
        moved = np.roll(changed, (dy, dx), axis=(0, 1))
        return float(np.nanmean(cva[moved]) / np.nanmean(cva[(label == 1) & ~moved]))

    at = {(dy, dx): contrast(dy, dx) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2)}
    assert max(at, key=at.get) == (0, 0), at
    assert at[(0, 0)] > 1.5 and at[(0, 0)] > 1.15 * max(at[(0, 2)], at[(2, 0)], at[(0, -2)])

    out = store_pair_change(ds, f"{month:%Y-%m}")
    found = out["change"].values
    hit = (found & changed).sum() / changed.sum()
    chance = found[label > 0].mean()
    assert hit > 4 * chance, (hit, chance)
    # the second date's two cumulus and the shadow (about 3.5 % of the site) are obscured,
    # not change, and hide little of the labelled change
    hidden = out["obscured"].values
    assert 0.02 < hidden[label > 0].mean() < 0.06, hidden.sum()
    assert (hidden & changed).sum() < 0.1 * changed.sum() and not found[hidden].any()
