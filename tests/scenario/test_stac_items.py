"""Tests of nampo.io.stac_items and nampo.scenario.stac_items, held against real Earth
Search v1 records.

The real records live in ``../shared/data/real`` next to the repository (see its
PROVENANCE.md); they are read from there, never copied. Comparisons with reality take
their expected values from those files.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box, shape

from nampo.grid import Grid
from nampo.io.stac_format import ASSET_FILES, ASSET_KEYS, LICENSE_HREF
from nampo.io.stac_items import RasterAsset
from nampo.scenario.stac_items import (
    PROCESSING_BASELINES,
    SceneMeta,
    boa_offset_applies,
    build_collection,
    build_item,
    item_id,
    processing_baseline_for,
    reflectance_conversion_factor,
)

# --------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------


def _shared_real() -> Path:
    """``shared/data/real`` next to the repository root (the repo's parent holds it)."""
    repo = Path(__file__).resolve().parents[2]
    for shared in (repo.parent / "shared", Path("/work/shared")):
        real = shared / "data" / "real"
        if real.is_dir():
            return real
    pytest.skip(f"real reference data not found next to {repo} (../shared/data/real)")


def _load(name: str):
    return json.loads((_shared_real() / name).read_text())


@pytest.fixture(scope="module")
def real_item() -> dict:
    return _load("es_v1_item_sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json")


@pytest.fixture(scope="module")
def real_collection() -> dict:
    cols = _load("es_v1_collections.json")["collections"]
    return next(c for c in cols if c["id"] == "sentinel-2-l2a")


# What the scenario archive deliberately does not have (module docstring of stac_items):
# the JPEG2000 duplicates of every COG, the thumbnail, and the two metadata files.
EXPECTED_MISSING_ASSETS = {
    "thumbnail",
    "granule_metadata",
    "tileinfo_metadata",
    *(f"{key}-jp2" for key in ASSET_KEYS),
}

# --------------------------------------------------------------------------------------
# A made-up scene of Nampo on the ES resolutions (10, 20, 60 m)
# --------------------------------------------------------------------------------------

SITE = Grid(epsg=32651, resolution=10.0, x0=700000.0, y0=4292000.0, width=1000, height=600)


def _footprint() -> Polygon:
    """The site's outline in lon/lat (its edges densified to follow the projection)."""
    to_lonlat = Transformer.from_crs(SITE.epsg, 4326, always_xy=True)
    outline = box(*SITE.bounds).segmentize(500.0)
    return shapely.transform(outline, lambda xy: np.column_stack(to_lonlat.transform(*xy.T)))


FOOTPRINT = _footprint()
_RES = {
    **dict.fromkeys(("blue", "green", "red", "nir", "visual"), 10),
    **dict.fromkeys(("coastal", "nir09"), 60),
}


def _assets(folder: Path) -> list[RasterAsset]:
    out = []
    for key in ASSET_KEYS:
        res = _RES.get(key, 20)
        shape = (600 * 10 // res, -(-1000 * 10 // res))  # 60 m: (100, 167)
        transform = Affine(res, 0, SITE.x0, 0, -res, SITE.y0)
        out.append(RasterAsset(key, folder / f"{ASSET_FILES[key]}.tif", shape, transform))
    return out


def _scene(when: datetime, **kw) -> SceneMeta:
    fields = {
        "platform": "sentinel-2b",
        "mgrs_tile": "51SYC",
        "datetime": when,
        "epsg": 32651,
        "footprint_lonlat": FOOTPRINT,
        "cloud_cover": 12.345678912,
        "scl_percentages": {
            "nodata_pixel": 0.0,
            "saturated_defective": 0.0,
            "dark_features": 1.2,
            "cloud_shadow": 2.5,
            "vegetation": 20.1,
            "not_vegetated": 30.2,
            "water": 31.0,
            "unclassified": 0.3,
            "medium_proba_clouds": 6.0,
            "high_proba_clouds": 4.0,
            "thin_cirrus": 2.345679,
            "snow_ice": 0.0,
        },
        "processing_baseline": processing_baseline_for(when),
        "relative_orbit": 3,
        "absolute_orbit": 25704,
        "sun_azimuth": 150.2,
        "sun_elevation": 32.1,
    }
    return SceneMeta(**(fields | kw))


FOLDER = Path("/archive/51SYC/2022/2/S2B_51SYC_20220210_0_L2A")
WHEN_2022 = datetime(2022, 2, 10, 2, 26, 11, 24000, tzinfo=UTC)  # baseline 04.00
WHEN_2017 = datetime(2017, 5, 3, 2, 26, 1, tzinfo=UTC)  # baseline 02.05


@pytest.fixture(scope="module")
def item() -> dict:
    return build_item(_scene(WHEN_2022), _assets(FOLDER))


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def _shape_of(text: str) -> str:
    """A string with every digit as 9 and every capital as A: its naming pattern."""
    return re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", text))


# --------------------------------------------------------------------------------------
# Items against the real ES item
# --------------------------------------------------------------------------------------


def test_top_level_like_real(item, real_item):
    assert list(item) == list(real_item)
    assert item["type"] == real_item["type"]
    assert item["stac_version"] == real_item["stac_version"]
    assert item["collection"] == real_item["collection"]
    assert item["stac_extensions"] == real_item["stac_extensions"]


def test_every_es_property_with_the_same_json_type(item, real_item):
    ours, real = item["properties"], real_item["properties"]
    assert list(ours) == list(real)  # the same keys, in ES's order
    for key, value in real.items():
        assert _json_type(ours[key]) == _json_type(value), key
    assert ours["instruments"] == real["instruments"]
    assert ours["constellation"] == real["constellation"]
    assert ours["s2:product_type"] == real["s2:product_type"]
    assert ours["s2:datatake_type"] == real["s2:datatake_type"]
    assert set(ours["processing:software"]) == {"nampo"}


def test_scene_values(item):
    p = item["properties"]
    assert item["id"] == "S2B_51SYC_20220210_0_L2A"
    assert p["platform"] == "sentinel-2b"
    assert p["proj:epsg"] == 32651
    assert (p["mgrs:utm_zone"], p["mgrs:latitude_band"], p["mgrs:grid_square"]) == (51, "S", "YC")
    assert p["grid:code"] == "MGRS-51SYC"
    assert p["datetime"] == "2022-02-10T02:26:11.024000Z"
    assert p["eo:cloud_cover"] == 12.345679  # six decimals, as ES prints them
    assert p["s2:water_percentage"] == 31.0
    assert p["s2:thin_cirrus_percentage"] == 2.345679
    assert p["s2:degraded_msi_data_percentage"] == 0.0
    assert p["s2:sequence"] == "0"
    assert p["s2:processing_baseline"] == "04.00"
    assert "_N0400_R003_T51SYC_" in p["s2:product_uri"]
    assert p["s2:datatake_id"].endswith("_025704_N04.00")
    assert "_A025704_T51SYC_N04.00" in p["s2:granule_id"]
    assert p["earthsearch:s3_path"] == str(FOLDER)
    assert p["view:sun_azimuth"] == 150.2


def test_identifiers_have_the_real_naming_pattern(real_item):
    """A 05.09 scene (the real item's baseline): every ESA identifier has its shape."""
    when = datetime(2023, 10, 8, 2, 26, 11, 276000, tzinfo=UTC)
    item = build_item(_scene(when, platform="sentinel-2a"), _assets(FOLDER))
    ours, real = item["properties"], real_item["properties"]
    assert ours["s2:processing_baseline"] == real["s2:processing_baseline"] == "05.09"
    for key in (
        "created",
        "updated",
        "datetime",
        "s2:generation_time",
        "s2:product_uri",
        "s2:datatake_id",
        "s2:datastrip_id",
        "s2:granule_id",
        "grid:code",
        "s2:sequence",
    ):
        assert _shape_of(ours[key]) == _shape_of(real[key]), key
    assert _shape_of(item["id"]) == _shape_of(real_item["id"])


def test_reflectance_conversion_factor_is_close_to_esa(real_item):
    p = real_item["properties"]
    when = datetime.fromisoformat(p["datetime"])
    assert reflectance_conversion_factor(when) == pytest.approx(
        p["s2:reflectance_conversion_factor"], rel=3e-3
    )


def test_asset_keys_are_the_real_cogs(item, real_item):
    ours, real = set(item["assets"]), set(real_item["assets"])
    assert ours <= real
    assert real - ours == EXPECTED_MISSING_ASSETS
    assert list(item["assets"]) == sorted(item["assets"])  # ES lists them alphabetically


@pytest.mark.parametrize("key", ASSET_KEYS)
def test_asset_fields_like_real(item, real_item, key):
    ours, real = item["assets"][key], real_item["assets"][key]
    assert list(ours) == list(real)  # same fields, same order
    for field in ("type", "title", "roles", "eo:bands", "gsd", "raster:bands"):
        assert ours.get(field) == real.get(field), field
    assert ours["href"] == str(FOLDER / f"{ASSET_FILES[key]}.tif")
    assert Path(ours["href"]).name == Path(real["href"]).name  # ES's file names


@pytest.mark.parametrize("key", ASSET_KEYS)
def test_proj_fields_consistent(item, real_item, key):
    for asset in (item["assets"][key], real_item["assets"][key]):
        t = asset["proj:transform"]
        rows, cols = asset["proj:shape"]
        assert len(t) == 6 and rows > 0 and cols > 0
        assert t[1] == t[3] == 0 and t[0] == -t[4]
        if "gsd" in asset:
            assert t[0] == asset["gsd"]
        if "raster:bands" in asset:
            assert t[0] == asset["raster:bands"][0]["spatial_resolution"]
    ours = item["assets"][key]
    t = Affine(*ours["proj:transform"])
    rows, cols = ours["proj:shape"]
    west, south, east, north = SITE.bounds
    assert (t.c, t.f) == (west, north)
    # the far corner: exact at 10 and 20 m; at 60 m 167 columns reach 20 m past the site
    assert (t.c + t.a * cols, t.f + t.e * rows) == pytest.approx((east, south), abs=t.a)


def test_offset_rule_2022_vs_2017(item):
    old = build_item(_scene(WHEN_2017), _assets(FOLDER))
    assert old["properties"]["s2:processing_baseline"] == "02.05"
    assert item["properties"]["s2:processing_baseline"] == "04.00"
    assert old["properties"]["earthsearch:boa_offset_applied"] is False
    assert item["properties"]["earthsearch:boa_offset_applied"] is True
    for key in ("coastal", "blue", "red", "nir", "nir08", "swir22"):
        assert old["assets"][key]["raster:bands"][0]["offset"] == 0
        assert item["assets"][key]["raster:bands"][0]["offset"] == -0.1
        assert old["assets"][key]["raster:bands"][0]["scale"] == 0.0001
    for key in ("scl", "aot", "wvp"):  # not reflectance: the same under both baselines
        assert old["assets"][key]["raster:bands"] == item["assets"][key]["raster:bands"]


def test_links_only_license(item, real_item):
    real_license = [link for link in real_item["links"] if link["rel"] == "license"]
    assert item["links"] == real_license


def test_geometry_and_bbox(item):
    footprint = FOOTPRINT
    geometry = shape(item["geometry"])
    assert geometry.equals(footprint)
    assert geometry.exterior.is_ccw
    assert item["bbox"] == pytest.approx(list(footprint.bounds))
    assert item["links"] == [{"rel": "license", "href": LICENSE_HREF}]


def test_partial_footprint_clockwise_input_is_oriented():
    tri = Polygon([(125.3, 38.70), (125.4, 38.78), (125.5, 38.70)])  # clockwise
    assert not tri.exterior.is_ccw
    item = build_item(_scene(WHEN_2022, footprint_lonlat=tri), _assets(FOLDER))
    assert shape(item["geometry"]).exterior.is_ccw
    assert item["bbox"] == [125.3, 38.70, 125.5, 38.78]


def test_pystac_round_trip(item):
    assert json.loads(json.dumps(item)) == item  # plain JSON types only
    pystac.Item.from_dict(item).to_dict()  # with pystac's migration to its own version
    back = pystac.Item.from_dict(item, migrate=False).to_dict()
    assert back.pop("stac_version") == pystac.get_stac_version()  # pystac writes its own
    assert back == {k: v for k, v in item.items() if k != "stac_version"}


def test_percentages_rounded_past_100_are_clamped():
    scene = _scene(WHEN_2022, cloud_cover=100.000002, scl_percentages={"water": -0.000001})
    p = build_item(scene, _assets(FOLDER))["properties"]
    assert p["eo:cloud_cover"] == 100.0
    assert p["s2:water_percentage"] == 0.0


def test_deterministic():
    a = build_item(_scene(WHEN_2022), _assets(FOLDER))
    b = build_item(_scene(WHEN_2022), _assets(FOLDER)[::-1])
    assert a == b


def test_subset_of_assets():
    scl_only = [a for a in _assets(FOLDER) if a.key == "scl"]
    item = build_item(_scene(WHEN_2022), scl_only)
    assert list(item["assets"]) == ["scl"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mgrs_tile": "51SY"}, "MGRS"),
        ({"epsg": 32652}, "does not match"),
        ({"datetime": datetime(2022, 2, 10, 2, 26)}, "timezone"),
        ({"platform": "landsat-8"}, "platform"),
        ({"processing_baseline": "4.0"}, "baseline"),
        ({"relative_orbit": 144}, "relative_orbit"),
        ({"cloud_cover": 101.0}, "cloud_cover"),
        ({"scl_percentages": {"clouds": 3.0}}, "clouds"),
        ({"scl_percentages": {"water": 100.5}}, "water"),
        ({"footprint_lonlat": Polygon()}, "footprint"),
    ],
)
def test_bad_scene(change, message):
    with pytest.raises(ValueError, match=message):
        build_item(_scene(WHEN_2022, **change), _assets(FOLDER))


def test_bad_assets():
    good = _assets(FOLDER)
    with pytest.raises(ValueError, match="at least one"):
        build_item(_scene(WHEN_2022), [])
    with pytest.raises(ValueError, match="B10"):
        build_item(_scene(WHEN_2022), [RasterAsset("B10", *_fields(good[0]))])
    with pytest.raises(ValueError, match="twice"):
        build_item(_scene(WHEN_2022), [good[0], good[0]])
    rel = RasterAsset(good[0].key, Path("B01.tif"), good[0].shape, good[0].transform)
    with pytest.raises(ValueError, match="not absolute"):
        build_item(_scene(WHEN_2022), [rel])
    skew = RasterAsset(good[0].key, good[0].path, good[0].shape, Affine(10, 1, 0, 0, -10, 0))
    with pytest.raises(ValueError, match="north-up"):
        build_item(_scene(WHEN_2022), [skew])


def _fields(asset: RasterAsset):
    return asset.path, asset.shape, asset.transform


# --------------------------------------------------------------------------------------
# Ids and baselines
# --------------------------------------------------------------------------------------


def test_item_id():
    assert item_id(_scene(WHEN_2017, platform="sentinel-2a")) == "S2A_51SYC_20170503_0_L2A"
    assert item_id(_scene(WHEN_2017, sequence=1)) == "S2B_51SYC_20170503_1_L2A"


def test_baseline_04_starts_on_2022_01_25():
    assert processing_baseline_for(date(2022, 1, 24)) == "03.01"
    assert processing_baseline_for(date(2022, 1, 25)) == "04.00"
    assert processing_baseline_for(datetime(2022, 1, 24, 23, 59, 59, tzinfo=UTC)) == "03.01"
    assert processing_baseline_for(datetime(2022, 1, 25, 0, 0, 1, tzinfo=UTC)) == "04.00"
    assert boa_offset_applies("03.01") is False
    assert boa_offset_applies("04.00") is True


def test_baselines_of_the_nampo_years():
    assert processing_baseline_for(date(2015, 8, 1)) == "02.00"
    assert processing_baseline_for(date(2016, 3, 1)) == "02.01"
    assert processing_baseline_for(date(2016, 7, 1)) == "02.04"
    assert processing_baseline_for(date(2017, 5, 3)) == "02.05"
    assert processing_baseline_for(date(2017, 11, 1)) == "02.06"
    assert processing_baseline_for(date(2018, 4, 1)) == "02.07"
    assert processing_baseline_for(date(2021, 7, 1)) == "03.01"
    with pytest.raises(ValueError, match="before"):
        processing_baseline_for(date(2015, 6, 22))  # before Sentinel-2A's launch


def test_baselines_are_ordered():
    days = [day for day, _ in PROCESSING_BASELINES]
    baselines = [baseline for _, baseline in PROCESSING_BASELINES]
    assert days == sorted(days) and len(set(days)) == len(days)
    assert baselines == sorted(baselines)


def test_baseline_matches_real_recent_items(real_item):
    """Every recorded ES/PC Sentinel-2 L2A item published as new has the table's baseline."""
    items = [real_item]
    for page in (1, 2):
        name = f"es_v1_search_cql2_cloudcover_page{page}.json"
        items += [f for f in _load(name)["features"] if f["collection"] == "sentinel-2-l2a"]
    items += _load("pc_items_sentinel-2-l2a_4items.json")
    assert len(items) >= 5
    for it in items:
        p = it["properties"]
        when = datetime.fromisoformat(p["datetime"].replace("Z", "+00:00"))
        assert processing_baseline_for(when) == p["s2:processing_baseline"], it["id"]


# --------------------------------------------------------------------------------------
# Collection
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collection() -> dict:
    return build_collection(
        FOOTPRINT.bounds, datetime(2016, 1, 1, tzinfo=UTC), datetime(2018, 12, 31, tzinfo=UTC)
    )


def test_collection_like_real(collection, real_collection):
    assert collection["stac_extensions"] == real_collection["stac_extensions"]
    for field in ("type", "id", "stac_version", "title", "license", "keywords", "summaries"):
        assert collection[field] == real_collection[field], field
    assert set(real_collection["item_assets"]) - set(collection["item_assets"]) == (
        EXPECTED_MISSING_ASSETS
    )
    for key, ours in collection["item_assets"].items():
        real = {
            k: v
            for k, v in real_collection["item_assets"][key].items()
            if k not in ("proj:shape", "proj:transform")
        }
        assert ours == real, key
    assert [link["rel"] for link in collection["links"]] == ["license"]


def test_collection_extent_and_round_trip(collection):
    assert collection["extent"]["spatial"]["bbox"] == [list(FOOTPRINT.bounds)]
    assert collection["extent"]["temporal"]["interval"] == [
        ["2016-01-01T00:00:00.000000Z", "2018-12-31T00:00:00.000000Z"]
    ]
    assert json.loads(json.dumps(collection)) == collection
    c = pystac.Collection.from_dict(collection)
    assert c.id == "sentinel-2-l2a"
    c.to_dict()


def test_collection_open_ended_and_bad_input():
    c = build_collection((125.3, 38.7, 125.5, 38.8), datetime(2016, 1, 1, tzinfo=UTC), None)
    assert c["extent"]["temporal"]["interval"][0][1] is None
    with pytest.raises(ValueError, match="lon/lat"):
        build_collection((700000, 4e6, 710000, 4.01e6), datetime(2016, 1, 1, tzinfo=UTC), None)
    with pytest.raises(ValueError, match="before start"):
        build_collection(
            (125.3, 38.7, 125.5, 38.8),
            datetime(2018, 1, 1, tzinfo=UTC),
            datetime(2016, 1, 1, tzinfo=UTC),
        )
