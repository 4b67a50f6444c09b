"""The local STAC API (nampo.services.pgstac) checked with pystac-client.

Each search's expected result is computed from ``items.ndjson`` with plain json + shapely,
independently of the server: the exact set of ids (and the order, for sortby), and
``numberMatched``.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
import pytest
from pystac_client import Client
from shapely.geometry import Point, box, mapping, shape
from shapely.ops import unary_union

from nampo.cli import main
from nampo.errors import CatalogError
from nampo.io import catalog
from nampo.services import pgstac

pytestmark = pytest.mark.services

COLLECTION = "sentinel-2-l2a"


# ------------------------------------------------------------------------------ helpers


def _client(endpoint: pgstac.StacEndpoint) -> Client:
    client = Client.open(endpoint.url, timeout=30)
    client.add_conforms_to("SORT")  # stac-fastapi 7 sorts but does not say so
    return client


def _ids(items) -> list[str]:
    return [item["id"] for item in items]


def _when(item: dict) -> datetime:
    return datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))


def _cloud(item: dict) -> float:
    return float(item["properties"]["eo:cloud_cover"])


def _run(search) -> tuple[list[str], int | None]:
    """Ids of every item (following all pages) and the server's numberMatched."""
    return _ids(search.items_as_dicts()), search.matched()


def _area_selecting_some(items: list[dict], rank: int = 0):
    """A small disc that intersects some items but not all, derived from the archive.

    Candidates are discs on a 9x9 grid over the footprints' extent; the one whose count is
    `rank`-th closest to half the items is returned (so two tests can use two areas).
    """
    footprints = [shape(item["geometry"]) for item in items]
    west, south, east, north = unary_union(footprints).bounds
    radius = 0.02 * max(east - west, north - south)
    scored = []
    for fx in np.linspace(0.05, 0.95, 9):
        for fy in np.linspace(0.05, 0.95, 9):
            area = Point(west + fx * (east - west), south + fy * (north - south)).buffer(radius)
            n = sum(area.intersects(footprint) for footprint in footprints)
            if 0 < n < len(items):
                scored.append((abs(n - len(items) / 2), fx, fy, area))
    assert len(scored) > rank, "the archive's footprints are all alike: no selective area"
    return sorted(scored, key=lambda s: s[:3])[rank][3]


@pytest.fixture(scope="module")
def items(small_archive_items: list[dict]) -> list[dict]:
    ids = _ids(small_archive_items)
    assert len(ids) == len(set(ids)), "items.ndjson repeats ids"
    assert all("eo:cloud_cover" in item["properties"] for item in small_archive_items)
    return small_archive_items


@pytest.fixture(scope="module")
def client(loaded_stac_api: pgstac.StacEndpoint) -> Client:
    return _client(loaded_stac_api)


# ------------------------------------------------------------------------------ searches


def test_bbox(client: Client, items: list[dict]) -> None:
    bbox = _area_selecting_some(items).bounds
    expected = {i["id"] for i in items if box(*bbox).intersects(shape(i["geometry"]))}

    ids, matched = _run(client.search(collections=[COLLECTION], bbox=bbox, limit=50))

    assert sorted(ids) == sorted(expected)
    assert matched == len(expected)


def test_intersects(client: Client, items: list[dict]) -> None:
    area = _area_selecting_some(items, rank=1)  # a 64-gon, not a box
    expected = {i["id"] for i in items if area.intersects(shape(i["geometry"]))}

    ids, matched = _run(client.search(collections=[COLLECTION], intersects=mapping(area), limit=50))

    assert sorted(ids) == sorted(expected)
    assert matched == len(expected)


def test_datetime_range(client: Client, items: list[dict]) -> None:
    days = sorted({_when(i).date() for i in items})
    first, last = days[len(days) // 4], days[(3 * len(days)) // 5]
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last, time.max, tzinfo=UTC)
    expected = {i["id"] for i in items if start <= _when(i) <= end}
    assert 0 < len(expected) < len(items)

    ids, matched = _run(client.search(collections=[COLLECTION], datetime=(start, end), limit=50))

    assert sorted(ids) == sorted(expected)
    assert matched == len(expected)


def _cloud_threshold(items: list[dict]) -> float:
    # The median value itself, so the "<=" boundary case is in the data.
    return sorted(_cloud(i) for i in items)[len(items) // 2]


def test_cloud_filter_cql2(client: Client, items: list[dict]) -> None:
    limit = _cloud_threshold(items)
    expected = {i["id"] for i in items if _cloud(i) <= limit}
    assert 0 < len(expected) < len(items)
    cql2 = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, limit]}

    ids, matched = _run(
        client.search(collections=[COLLECTION], filter=cql2, filter_lang="cql2-json", limit=50)
    )

    assert sorted(ids) == sorted(expected)
    assert matched == len(expected)


def test_cloud_filter_query(client: Client, items: list[dict]) -> None:
    limit = _cloud_threshold(items)
    expected = {i["id"] for i in items if _cloud(i) <= limit}
    assert 0 < len(expected) < len(items)

    ids, matched = _run(
        client.search(collections=[COLLECTION], query={"eo:cloud_cover": {"lte": limit}}, limit=50)
    )

    assert sorted(ids) == sorted(expected)
    assert matched == len(expected)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sortby_cloud_cover_is_numeric(client: Client, items: list[dict], direction: str) -> None:
    reverse = direction == "desc"
    expected = _ids(sorted(items, key=lambda i: (_cloud(i), i["id"]), reverse=reverse))
    as_text = _ids(sorted(items, key=lambda i: (str(_cloud(i)), i["id"]), reverse=reverse))
    assert expected != as_text, "archive cannot tell numeric from textual sorting"

    ids, matched = _run(
        client.search(
            collections=[COLLECTION],
            sortby=[
                {"field": "properties.eo:cloud_cover", "direction": direction},
                {"field": "id", "direction": direction},
            ],
            limit=40,  # the order must hold across pages
        )
    )

    assert ids == expected
    assert matched == len(items)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sortby_datetime(client: Client, items: list[dict], direction: str) -> None:
    reverse = direction == "desc"
    expected = _ids(sorted(items, key=lambda i: (_when(i), i["id"]), reverse=reverse))

    ids, _ = _run(
        client.search(
            collections=[COLLECTION],
            sortby=[
                {"field": "properties.datetime", "direction": direction},
                {"field": "id", "direction": direction},
            ],
            limit=40,
        )
    )

    assert ids == expected


def test_paging_past_100_items(client: Client, items: list[dict]) -> None:
    assert len(items) > 100, "the archive is too small to page past 100 items"
    page_size = 30
    search = client.search(collections=[COLLECTION], limit=page_size)

    pages = [_ids(page["features"]) for page in search.pages_as_dicts()]
    ids = [item_id for page in pages for item_id in page]

    assert len(pages) == -(-len(items) // page_size)
    assert all(len(page) == page_size for page in pages[:-1])
    assert len(ids) == len(set(ids)) == len(items)
    assert set(ids) == set(_ids(items))
    assert search.matched() == len(items)


def test_items_come_back_as_loaded(client: Client, items: list[dict]) -> None:
    """Same JSON as items.ndjson apart from links: absolute hrefs, proj:epsg, every asset."""
    by_id = {item["id"]: item for item in items}
    found = list(client.search(collections=[COLLECTION], limit=100).items_as_dicts())

    assert len(found) == len(items)
    for item in found:
        assert {**item, "links": None} == {**by_id[item["id"]], "links": None}


# ----------------------------------------------------------------------------- lifecycle


def test_start_again_returns_the_running_endpoint(
    stac_api: pgstac.StacEndpoint, stac_home: Path
) -> None:
    assert pgstac.start(stac_home / "stac") == stac_api
    assert pgstac.status(stac_home / "stac").running


def test_loading_twice_does_not_duplicate(
    loaded_stac_api: pgstac.StacEndpoint, small_archive: Path, items: list[dict]
) -> None:
    assert pgstac.load(loaded_stac_api, small_archive) == len(items)

    search = _client(loaded_stac_api).search(collections=[COLLECTION], limit=100)
    ids = _ids(search.items_as_dicts())

    assert len(ids) == len(set(ids)) == len(items)
    assert search.matched() == len(items)


def test_cli_status_of_the_running_stack(
    stac_api: pgstac.StacEndpoint, stac_home: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NAMPO_HOME", str(stac_home))

    assert main(["stac", "status"]) == 0
    assert stac_api.url in capsys.readouterr().out


def test_cli_search_lists_items(
    loaded_stac_api: pgstac.StacEndpoint,
    stac_home: Path,
    items: list[dict],
    monkeypatch,
    capsys,
) -> None:
    monkeypatch.setenv("NAMPO_HOME", str(stac_home))
    area = _area_selecting_some(items)
    first, last = min(_when(i) for i in items).date(), max(_when(i) for i in items).date()
    # The CLI searches by bbox: what a box of the area's bounds intersects.
    expected = [i for i in items if box(*area.bounds).intersects(shape(i["geometry"]))]

    code = main(
        [
            "stac",
            "search",
            "--bbox",
            ",".join(map(str, area.bounds)),
            "--start",
            first.isoformat(),
            "--end",
            last.isoformat(),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert out.strip().splitlines()[-1] == f"{len(expected)} items"
    assert {line.split()[0] for line in out.splitlines()[1:-1]} == set(_ids(expected))


def test_stop_start_stop_lifecycle(monkeypatch, capsys) -> None:
    """A second stack of its own: start twice, stop, search fails clearly, restart, stop."""
    home = Path(tempfile.mkdtemp(prefix="nampo-test-life-"))
    state_dir = home / "stac"
    try:
        first = pgstac.start(state_dir)
        assert pgstac.start(state_dir) == first
        assert pgstac.status(state_dir).running

        pgstac.stop(state_dir)
        assert not pgstac.status(state_dir).running
        pgstac.stop(state_dir)  # safe when nothing runs

        with pytest.raises(CatalogError, match=first.url.replace(".", r"\.")) as caught:
            catalog.search(
                "local",
                first.url,
                box(125.3, 38.7, 125.4, 38.8),
                date(2016, 1, 1),
                date(2016, 12, 31),
                None,
            )
        assert "\n" not in str(caught.value)

        # The CLI says so on one line and exits non-zero, with and without a state file.
        monkeypatch.setenv("NAMPO_HOME", str(home))
        for extra in ([], ["--url", first.url]):
            code = main(
                [
                    "stac",
                    "search",
                    *extra,
                    "--bbox",
                    "125.3,38.7,125.4,38.8",
                    "--start",
                    "2016-01-01",
                    "--end",
                    "2016-12-31",
                ]
            )
            err = capsys.readouterr().err
            assert code != 0
            assert err.startswith("nampo: error: ") and err.count("\n") == 1
        assert main(["stac", "status"]) != 0

        again = pgstac.start(state_dir)  # the cluster is reused, ports are new
        assert pgstac.status(state_dir).running
        assert again.dsn.split("@")[0] == first.dsn.split("@")[0]  # same password
    finally:
        pgstac.stop(state_dir)
        assert not pgstac.status(state_dir).postgres
        shutil.rmtree(home, ignore_errors=True)
