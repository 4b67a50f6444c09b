"""nampo.io.catalog against recorded Earth Search and Planetary Computer responses, replayed
over HTTP on 127.0.0.1 (``tests/loopback.py``): paging by POST body tokens and by GET
links, the empty last page, and normalised results.

The recorded API root in every response is rewritten to the loopback server's URL, so the
``next`` links lead back to it. Where a recording has no following page, the recorded
empty Earth Search page stands in for it (said at each place).
"""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

import pytest

from nampo.errors import CatalogError, CatalogWarning
from nampo.io import catalog
from tests.loopback import (
    ES_ROOT,
    PC_ROOT,
    LoopbackServer,
    Replay,
    Reply,
    next_link,
    recorded,
    refuse_other_hosts,
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch) -> None:
    refuse_other_hosts(monkeypatch)


FAST = catalog.RetryPolicy(attempts=2, budget=5.0, backoff=0.01)
PAGE1 = "es_v1_search_s2l2a_landsat_page1.json"
EMPTY = "es_v1_search_s2l2a_landsat_page2_empty.json"
# The point and day of the recorded Earth Search search (PROVENANCE.md).
BOULDER = {"type": "Point", "coordinates": [-105.1019, 40.1672]}
DAY = date(2023, 10, 8)


@pytest.fixture
def real(shared: Path) -> Path:
    return shared / "data" / "real"


def _serve(replay: Replay) -> LoopbackServer:
    server = LoopbackServer(replay)
    replay.url = server.url
    return server


def test_earth_search_post_token_paging_to_the_empty_page(real: Path) -> None:
    replay = Replay(
        real, ES_ROOT, "es_v1_landing.json", ["es_v1_search_s2l2a_landsat_page1.json", EMPTY]
    )
    with _serve(replay) as server:
        page1 = replay.load("es_v1_search_s2l2a_landsat_page1.json")  # links point here
        items = catalog.search(
            "earth-search", server.url, BOULDER, DAY, DAY, None, sign=False, retry=FAST
        )
        searches = server.requests("POST", "/search")
        landing = server.requests("GET", "/")

    assert len(landing) == 1
    assert len(searches) == 2  # the first page, then the recorded next token: empty page
    first, second = (s.body for s in searches)
    assert first["collections"] == ["sentinel-2-l2a"]
    assert first["intersects"] == BOULDER
    assert first["datetime"].startswith("2023-10-08T00:00:00")
    # "merge": false -> exactly the recorded body, token included.
    assert second == next_link(page1)["body"]
    assert "next" in second
    expected = sorted(page1["features"], key=lambda f: (f["properties"]["datetime"], f["id"]))
    assert [item["id"] for item in items] == [f["id"] for f in expected]
    assert items == expected  # the dicts as recorded, unmigrated (proj:epsg kept)


def test_earth_search_scenes_are_normalised(real: Path) -> None:
    replay = Replay(
        real, ES_ROOT, "es_v1_landing.json", ["es_v1_search_s2l2a_landsat_page1.json", EMPTY]
    )
    page1 = recorded(real, "es_v1_search_s2l2a_landsat_page1.json")
    with _serve(replay):
        scenes = catalog.search_scenes(
            "earth-search", replay.url, BOULDER, DAY, DAY, None, retry=FAST
        )

    by_id = {scene.id: scene for scene in scenes}
    for feature in page1["features"]:
        scene = by_id[feature["id"]]
        assert scene.epsg == feature["properties"]["proj:epsg"]
        red = feature["assets"]["red"]
        assert scene.bands["red"].href == red["href"]
        assert scene.bands["red"].scale == red["raster:bands"][0]["scale"]
        assert scene.bands["red"].offset == red["raster:bands"][0]["offset"]
    assert {scene.sensor for scene in scenes} == {"sentinel-2", "landsat"}


def test_three_pages_with_cql2_filter(real: Path) -> None:
    # Recorded: page 1 -> page 2 (POST, body {"next": token}); page 2's own next page was
    # not recorded: the recorded empty page stands in for it.
    pages = ["es_v1_search_cql2_cloudcover_page1.json", "es_v1_search_cql2_cloudcover_page2.json"]
    replay = Replay(real, ES_ROOT, "es_v1_landing.json", [*pages, EMPTY])
    features = [f for name in pages for f in recorded(real, name)["features"]]
    with _serve(replay) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no DoesNotConformTo("FILTER") warning
            items = catalog.search(
                "earth-search",
                server.url,
                BOULDER,
                date(2025, 7, 31),
                date(2025, 7, 31),
                40.0,
                limit=10,
                sign=False,
                retry=FAST,
            )
        bodies = [s.body for s in server.requests("POST", "/search")]

    assert len(bodies) == 3
    assert bodies[0]["filter"] == {
        "op": "<=",
        "args": [{"property": "eo:cloud_cover"}, 40.0],
    }
    assert bodies[0]["filter-lang"] == "cql2-json"
    assert bodies[1] == next_link(recorded(real, pages[0]))["body"]
    assert bodies[2] == next_link(recorded(real, pages[1]))["body"]
    # The recorded answer does not honour its own filter (the recorded request used the
    # op "lte", not CQL2's "<=", and Earth Search ignored it without an error): it holds
    # items above 40 % and items without eo:cloud_cover (Sentinel-1). The client-side
    # check drops both. The rest are separate products: S2 L1C / L2A / C1-L2A of one tile
    # are different collections, so none is a duplicate of another.
    cloud = {f["id"]: f["properties"].get("eo:cloud_cover") for f in features}
    assert any(c is None for c in cloud.values()) and any(c and c > 40 for c in cloud.values())
    kept = [i for i, c in cloud.items() if c is not None and c <= 40]
    assert sorted(item["id"] for item in items) == sorted(kept)


def test_scenes_skip_what_is_not_l2a_when_asked(real: Path) -> None:
    pages = ["es_v1_search_cql2_cloudcover_page1.json", "es_v1_search_cql2_cloudcover_page2.json"]
    replay = Replay(real, ES_ROOT, "es_v1_landing.json", [*pages, EMPTY])
    features = [f for name in pages for f in recorded(real, name)["features"]]
    s2 = ("sentinel-2-l2a", "sentinel-2-c1-l2a", "sentinel-2-l1c")
    l2a = [f["id"] for f in features if f["collection"] in s2]
    args = ("earth-search", None, BOULDER, date(2025, 7, 31), date(2025, 7, 31), None)
    with _serve(replay):
        with pytest.raises(CatalogError, match="sentinel-1-grd"):
            catalog.search_scenes(args[0], replay.url, *args[2:], retry=FAST)
        with pytest.warns(CatalogWarning, match="skipped") as caught:
            scenes = catalog.search_scenes(
                args[0], replay.url, *args[2:], retry=FAST, skip_invalid=True
            )

    assert sorted(scene.id for scene in scenes) == sorted(l2a)
    assert len(caught) == len(features) - len(l2a)


def test_planetary_computer_single_page_search(real: Path) -> None:
    replay = Replay(real, PC_ROOT, "pc_landing.json", ["pc_search_sentinel-2-l2a_33items.json"])
    recorded_items = recorded(real, "pc_search_sentinel-2-l2a_33items.json")["features"]
    with _serve(replay) as server:
        scenes = catalog.search_scenes(
            "planetary-computer",
            server.url,
            {"type": "Point", "coordinates": [170.0, 60.0]},
            date(2019, 1, 1),
            date(2019, 1, 1),
            None,
            retry=FAST,
        )
        assert len(server.requests("POST", "/search")) == 1  # no next link: one page

    assert len(scenes) == len(recorded_items) == 33
    for scene in scenes:
        assert scene.processing_baseline == "02.12"
        assert scene.bands["red"].key == "B04"
        assert scene.bands["red"].offset == 0.0  # baseline < 04.00: no BOA offset
        assert scene.bands["scl"].key == "SCL"


def test_get_next_link_paging(real: Path) -> None:
    # The recorded PC Landsat items page pages by a GET link with a token in its query.
    # Served here as the answer to the search; the recorded empty ES page stands in for the
    # page behind the token.
    name = "pc_items_landsat-c2-l2_page1.json"
    replay = Replay(real, PC_ROOT, "pc_landing.json", [name, EMPTY])
    page = recorded(real, name)
    with _serve(replay) as server:
        items = catalog.search(
            "planetary-computer",
            server.url,
            BOULDER,
            date(2025, 7, 22),
            date(2025, 7, 22),
            None,
            sign=False,
            retry=FAST,
        )
        follow = server.requests("GET", "/collections/landsat-c2-l2/items")

    assert len(follow) == 1
    token = next_link(page)["href"].split("token=")[1]
    assert follow[0].query["token"] == [token]
    assert sorted(item["id"] for item in items) == sorted(f["id"] for f in page["features"])


def test_an_item_on_two_pages_is_returned_once(real: Path) -> None:
    page1 = recorded(real, "es_v1_search_s2l2a_landsat_page1.json")
    again = json.loads(json.dumps(page1))
    again["links"] = [ln for ln in again["links"] if ln["rel"] != "next"]

    def handler(seen):
        if seen.path == "/":
            return Reply(body=recorded(real, "es_v1_landing.json", ES_ROOT, server.url))
        if seen.body and "next" in seen.body:
            return Reply(body=again)  # the same two items once more, and no next link
        return Reply(
            body=recorded(real, "es_v1_search_s2l2a_landsat_page1.json", ES_ROOT, server.url)
        )

    with LoopbackServer(handler) as server:
        items = catalog.search(
            "earth-search", server.url, BOULDER, DAY, DAY, None, sign=False, retry=FAST
        )
    assert sorted(item["id"] for item in items) == sorted(f["id"] for f in page1["features"])


def test_paging_that_does_not_advance_is_an_error(real: Path) -> None:
    def handler(seen):
        if seen.path == "/":
            return Reply(body=recorded(real, "es_v1_landing.json", ES_ROOT, server.url))
        # Always page 1, whose next link is always the same token.
        return Reply(
            body=recorded(real, "es_v1_search_s2l2a_landsat_page1.json", ES_ROOT, server.url)
        )

    with LoopbackServer(handler) as server:
        with pytest.raises(CatalogError, match="paging does not advance") as caught:
            catalog.search(
                "earth-search", server.url, BOULDER, DAY, DAY, None, sign=False, retry=FAST
            )
        assert len(server.requests("POST", "/search")) == 2
    assert server.url in str(caught.value) and "\n" not in str(caught.value)
