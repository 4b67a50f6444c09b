"""nampo.io.scenes: every real recorded item normalised, checked against its own JSON; dedup.

Expected values are read from each item's JSON (``raster:bands``, ``proj:*``, ``eo:bands``,
``s2:processing_baseline``). Only where an item is silent does a test name a value: the
Sentinel-2 quantification 1e-4 and the Landsat C2 L2 scale 2.75e-5 / offset -0.2 of the
USGS product guide. Items derived from real ones (a changed id, time or CRS field) say so.
"""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pystac
import pytest
from shapely.geometry import box, mapping, shape

from nampo.errors import CatalogError
from nampo.io import scenes
from tests.conftest import shared_dir
from tests.loopback import refuse_other_hosts


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch) -> None:
    refuse_other_hosts(monkeypatch)


REAL = shared_dir() / "data" / "real"
S2_L2A = ("sentinel-2-l2a", "sentinel-2-c1-l2a")
ES_S2 = "es_v1_item_sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json"
ES_LANDSAT = "es_v1_item_landsat-c2-l2_LC08_L2SP_033032_20231008_02_T1.json"


def _items(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    if isinstance(data, list):
        return data
    if data.get("type") == "FeatureCollection":
        return data["features"]
    if data.get("type") == "Feature":
        return [data]
    return []


ITEM_FILES = sorted(p.name for p in REAL.glob("*.json") if _items(p))


def _load(name: str) -> dict:
    return json.loads((REAL / name).read_text())


def test_every_named_source_is_among_the_files() -> None:
    for name in (
        ES_S2,
        ES_LANDSAT,
        "es_v1_item_sentinel-2-c1-l2a_S2B_T20EPT_20250731T131905_L2A.json",
        "pc_search_sentinel-2-l2a_33items.json",
        "pc_items_sentinel-2-l2a_4items.json",
        "pc_items_landsat-c2-l2_4items.json",
        "pc_items_landsat-c2-l2_page1.json",
        "usgs_landsatlook_item_LC08_L2SP_028030_20200114_02_T1_SR.json",
    ):
        assert name in ITEM_FILES


def _reference_wavelengths() -> dict[str, float]:
    """Sentinel-2 band centres by internal name, from the ES item's own eo:bands."""
    assets = _load(ES_S2)["assets"]
    return {
        key: asset["eo:bands"][0]["center_wavelength"]
        for key, asset in assets.items()
        if key in scenes.SENTINEL2_BANDS and asset.get("eo:bands")
    }


def _check(item: dict, scene: scenes.NormalisedItem) -> None:
    props = item["properties"]
    is_s2 = item["collection"] in S2_L2A
    assert scene.id == item["id"]
    assert scene.epsg == props["proj:epsg"]
    assert scene.datetime == datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    assert scene.datetime.tzinfo == UTC
    assert scene.cloud_cover == props.get("eo:cloud_cover")
    assert scene.processing_baseline == props.get("s2:processing_baseline")
    assert scene.platform == props["platform"].lower().replace("_", "-")
    table = scenes.SENTINEL2_BANDS if is_s2 else scenes.LANDSAT_BANDS
    expected = {name for name, spec in table.items() if set(spec.keys) & set(item["assets"])}
    assert set(scene.bands) == expected
    assert len(expected) == (13 if is_s2 else 8)  # every band of the table is there
    wavelengths = _reference_wavelengths()

    for name, band in scene.bands.items():
        asset = item["assets"][band.key]
        raster = (asset.get("raster:bands") or [{}])[0]
        mask = table[name].kind == "mask"
        assert band.href == asset["href"]
        if "scale" in raster:
            assert band.scale == raster["scale"]
        else:
            assert band.scale == (1.0 if mask else 1e-4 if is_s2 else 2.75e-5)
        if "offset" in raster:
            assert band.offset == raster["offset"]
        elif mask:
            assert band.offset == 0.0
        elif is_s2:
            new = float(props["s2:processing_baseline"]) >= 4.0
            assert band.offset == (-0.1 if new else 0.0)
        else:
            assert band.offset == -0.2
        if "nodata" in raster:
            assert band.nodata == raster["nodata"]
        if "data_type" in raster:
            assert band.dtype == raster["data_type"]
        shape_ = asset.get("proj:shape") or props["proj:shape"]
        transform = asset.get("proj:transform") or props["proj:transform"]
        assert band.shape == tuple(shape_)
        assert band.transform == tuple(transform[:6])
        assert band.resolution == abs(transform[0])
        # The mapping table agrees with the band's own description where it has one.
        described = (asset.get("eo:bands") or [{}])[0]
        if is_s2 and "center_wavelength" in described:
            assert described["center_wavelength"] == wavelengths[name]
        if not is_s2 and "common_name" in described:
            assert described["common_name"] == name


@pytest.mark.parametrize("name", ITEM_FILES)
def test_every_recorded_item_normalises_as_its_json_says(name: str) -> None:
    items = _items(REAL / name)
    normalised = 0
    for item in items:
        collection = item.get("collection", "")
        if collection in S2_L2A or "landsat" in collection:
            _check(item, scenes.normalise(item))
            normalised += 1
        elif collection == "sentinel-2-l1c":  # the L2A bands but no SCL: no mask
            scene = scenes.normalise(item)
            assert "scl" not in scene.bands and scene.mask_band is None
            assert scene.bands["red"].key == "red" and scene.bands["red"].offset == -0.1
            normalised += 1
        else:  # Sentinel-1: refused, naming the item and its collection
            with pytest.raises(CatalogError, match=f"item {item['id']} .*{collection}"):
                scenes.normalise(item)
    if not name.startswith(("es_v1_item_sentinel-1", "pc_items_sentinel-1")):
        assert normalised, f"{name}: nothing normalised"


def test_planetary_computer_offset_follows_the_baseline() -> None:
    """PC items carry no raster:bands: both sides of the 04.00 change are in the data."""
    offsets = {}
    for name in ("pc_search_sentinel-2-l2a_33items.json", "pc_items_sentinel-2-l2a_4items.json"):
        for item in _items(REAL / name):
            assert "raster:bands" not in item["assets"]["B04"]
            scene = scenes.normalise(item)
            offsets[scene.processing_baseline] = scene.bands["red"].offset
            assert scene.bands["nir08"].key == "B8A"  # PC calls B8A "rededge": keys rule
    assert offsets == {"02.12": 0.0, "05.10": -0.1}


def test_usgs_item_without_raster_bands_gets_the_product_guide_values() -> None:
    item = _load("usgs_landsatlook_item_LC08_L2SP_028030_20200114_02_T1_SR.json")
    assert not any("raster:bands" in asset for asset in item["assets"].values())
    scene = scenes.normalise(item)
    assert scene.platform == "landsat-8"  # "LANDSAT_8" in the item
    assert (scene.bands["red"].scale, scene.bands["red"].offset) == (2.75e-5, -0.2)
    assert (scene.bands["qa_pixel"].scale, scene.bands["qa_pixel"].nodata) == (1.0, 1.0)
    assert scene.tile == "028030"


def test_earth_search_landsat_is_requester_pays() -> None:
    scene = scenes.normalise(_load(ES_LANDSAT))
    assert scene.bands["red"].href.startswith("s3://usgs-landsat/")
    assert scene.bands["red"].requester_pays
    assert not scenes.normalise(_load(ES_S2)).bands["red"].requester_pays


# ------------------------------------------------------------------------------- CRS


def _without_epsg(item: dict) -> dict:
    item = copy.deepcopy(item)
    item["properties"].pop("proj:epsg")
    return item


def test_proj_code_at_item_level() -> None:
    item = _without_epsg(_load(ES_S2))  # derived: proj:epsg 32613 -> proj:code
    item["properties"]["proj:code"] = "EPSG:32613"
    assert scenes.normalise(item).epsg == 32613


def test_proj_code_at_asset_level_only() -> None:
    item = _without_epsg(_load(ES_S2))
    for asset in item["assets"].values():
        asset["proj:code"] = "EPSG:32613"
    assert scenes.normalise(item).epsg == 32613


def test_item_migrated_by_pystac_keeps_its_crs() -> None:
    original = _load(ES_S2)
    offline = copy.deepcopy(original)
    offline["links"] = []  # to_dict() would otherwise fetch the root link over the network
    migrated = pystac.Item.from_dict(offline).to_dict(
        include_self_link=False, transform_hrefs=False
    )
    assert "proj:epsg" not in migrated["properties"]  # pystac 1.15 writes proj:code only
    assert scenes.normalise(migrated).epsg == original["properties"]["proj:epsg"]


def test_bands_in_two_crss_are_refused() -> None:
    item = _without_epsg(_load(ES_S2))
    for key, asset in item["assets"].items():
        asset["proj:epsg"] = 32614 if key == "red" else 32613
    with pytest.raises(CatalogError, match="several CRSs"):
        scenes.normalise(item)


def test_missing_or_foreign_crs_is_refused() -> None:
    item = _without_epsg(_load(ES_S2))
    with pytest.raises(CatalogError, match="no CRS"):
        scenes.normalise(item)
    item["properties"]["proj:code"] = "IAU_2015:30100"
    with pytest.raises(CatalogError, match="not an EPSG code"):
        scenes.normalise(item)


def test_normalised_items_travel_to_workers() -> None:
    scene = scenes.normalise(_load(ES_S2))
    again = pickle.loads(pickle.dumps(scene))
    assert again == scene and hash(again) == hash(scene)
    assert again.stac == _load(ES_S2)


# ------------------------------------------------------------------------------ dedup


def _republished(item: dict, sequence: int, **props) -> dict:
    """A derived re-publication of a real ES item: the next sequence number, newer times."""
    copy_ = copy.deepcopy(item)
    copy_["id"] = item["id"].replace("_0_L2A", f"_{sequence}_L2A")
    copy_["properties"]["s2:sequence"] = str(sequence)
    copy_["properties"].update(props)
    return copy_


def test_same_id_on_two_pages_keeps_the_newest() -> None:
    item = _load(ES_S2)
    newer = copy.deepcopy(item)
    newer["properties"]["updated"] = "2024-01-01T00:00:00.000Z"
    kept = scenes.dedupe([item, newer, copy.deepcopy(item)])
    assert len(kept) == 1 and kept[0]["properties"]["updated"].startswith("2024")


def test_earth_search_sequence_republication_keeps_the_newest() -> None:
    first = _load(ES_S2)
    assert scenes.sequence(first) == 0 and first["id"].endswith("_0_L2A")
    second = _republished(first, 1, updated="2023-11-01T00:00:00.000Z")
    assert [i["id"] for i in scenes.dedupe([first, second])] == [second["id"]]
    assert [i["id"] for i in scenes.dedupe([second, first])] == [second["id"]]


def test_a_newer_baseline_wins_over_a_later_sequence() -> None:
    first = _load(ES_S2)
    reprocessed = copy.deepcopy(first)
    reprocessed["id"] = "S2A_13TDE_20231008_0_L2A_reprocessed"  # derived
    reprocessed["properties"]["s2:processing_baseline"] = "05.10"
    later = _republished(first, 1, updated="2025-01-01T00:00:00.000Z")
    assert [i["id"] for i in scenes.dedupe([first, later, reprocessed])] == [reprocessed["id"]]


def test_split_datastrips_of_one_tile_and_day_are_both_kept() -> None:
    first = _load(ES_S2)
    footprint = shape(first["geometry"])
    west, south, east, north = footprint.bounds
    second = _republished(first, 1)
    # Derived: the second datastrip covers the southern part only.
    second["geometry"] = mapping(footprint.intersection(box(west, south, east, south + 0.2)))
    assert len(scenes.dedupe([first, second])) == 2


def test_another_pass_the_same_day_is_kept() -> None:
    first = _load(ES_S2)
    second = _republished(first, 1)
    later = datetime.fromisoformat(first["properties"]["datetime"].replace("Z", "+00:00"))
    second["properties"]["datetime"] = (later + timedelta(minutes=100)).isoformat()
    assert len(scenes.dedupe([first, second])) == 2


def test_landsat_tier_change_keeps_the_newest_product() -> None:
    t1 = _load(ES_LANDSAT)
    rt = copy.deepcopy(t1)
    rt["id"] = t1["id"].replace("_T1", "_RT")  # derived: the real-time version before
    rt["properties"]["landsat:product_generated"] = "2023-10-09T00:00:00Z"
    rt["properties"]["landsat:collection_category"] = "RT"
    assert [i["id"] for i in scenes.dedupe([rt, t1])] == [t1["id"]]


def test_real_pages_have_no_duplicates() -> None:
    """33 PC items share one datatake datetime: they differ by tile and are all kept."""
    for name in ITEM_FILES:
        items = _items(REAL / name)
        assert len(scenes.dedupe(items)) == len(items), name


def test_tile_and_platform_readers() -> None:
    assert scenes.tile(_load(ES_S2)) == "13TDE"
    assert scenes.tile(_load(ES_LANDSAT)) == "033032"
    pc = _items(REAL / "pc_items_sentinel-2-l2a_4items.json")[0]
    assert scenes.tile(pc) == pc["properties"]["s2:mgrs_tile"]
    assert scenes.platform(pc) == "sentinel-2b"  # "Sentinel-2B" in the item
    bare = {"id": "S2A_13TDE_20231008_0_L2A", "properties": {}}
    assert scenes.platform(bare) == "sentinel-2a"
