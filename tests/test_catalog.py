"""nampo.catalog: profiles, signing hooks, errors, and search against the local STAC API."""

from __future__ import annotations

import socket
import sys
import types
from datetime import UTC, date, datetime, time

import pytest
from shapely.geometry import mapping, shape

from nampo import catalog
from nampo.errors import CatalogError
from nampo.services import pgstac

NAMPO_BOX = {
    "type": "Polygon",
    "coordinates": [[[125.3, 38.7], [125.5, 38.7], [125.5, 38.8], [125.3, 38.8], [125.3, 38.7]]],
}


def _refused_url() -> str:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# ------------------------------------------------------------------------ without server


def test_profiles_are_named() -> None:
    assert catalog.get_profile("earth-search").url == "https://earth-search.aws.element84.com/v1"
    assert catalog.get_profile("planetary-computer").collection == "sentinel-2-l2a"
    assert catalog.get_profile("local").url is None


def test_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(CatalogError, match="earth-search, planetary-computer"):
        catalog.get_profile("google")


def test_local_needs_a_url() -> None:
    with pytest.raises(CatalogError, match="pass one"):
        catalog.search("local", None, NAMPO_BOX, date(2018, 1, 1), date(2018, 2, 1), None)


def test_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(CatalogError, match="before it starts"):
        catalog.search(
            "local", "http://127.0.0.1:1", NAMPO_BOX, date(2018, 2, 1), date(2018, 1, 1), None
        )


def test_unreachable_api_is_one_line_naming_the_url() -> None:
    url = _refused_url()
    with pytest.raises(CatalogError) as caught:
        catalog.search("local", url, NAMPO_BOX, date(2018, 1, 1), date(2018, 2, 1), 20.0)
    message = str(caught.value)
    assert message == f"cannot reach the STAC API at {url}: Connection refused"


def test_cli_search_of_an_unreachable_api_fails_on_one_line(capsys) -> None:
    from nampo.cli import main

    url = _refused_url()
    code = main(
        [
            "stac",
            "search",
            "--url",
            url,
            "--bbox",
            "125.3,38.7,125.5,38.8",
            "--start",
            "2018-01-01",
            "--end",
            "2018-02-01",
        ]
    )

    assert code != 0
    assert (
        capsys.readouterr().err == f"nampo: error: cannot reach the STAC API at {url}: "
        "Connection refused\n"
    )


def test_profiles_without_signer_return_items_unchanged() -> None:
    item = {"id": "a", "assets": {"red": {"href": "https://example.com/B04.tif"}}}
    assert catalog.get_profile("earth-search").sign(item) is item


def test_planetary_computer_signing_without_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # import raises
    item = {"id": "a", "assets": {"red": {"href": "https://x.blob.core.windows.net/B04.tif"}}}
    with pytest.raises(CatalogError, match="'planetary-computer' package"):
        catalog.get_profile("planetary-computer").sign(item)


def test_planetary_computer_signing_signs_a_copy(monkeypatch) -> None:
    fake = types.SimpleNamespace(sign=lambda href: f"{href}?sig=token")
    monkeypatch.setitem(sys.modules, "planetary_computer", fake)
    item = {"id": "a", "assets": {"red": {"href": "https://x.blob.core.windows.net/B04.tif"}}}

    signed = catalog.get_profile("planetary-computer").sign(item)

    assert signed["assets"]["red"]["href"].endswith("B04.tif?sig=token")
    assert item["assets"]["red"]["href"].endswith("B04.tif")


# --------------------------------------------------------------- against the local API


def _expected(items, area, start: date, end: date, max_cloud) -> list[str]:
    first = datetime.combine(start, time.min, tzinfo=UTC)
    last = datetime.combine(end, time.max, tzinfo=UTC)

    def when(item):
        return datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))

    kept = [
        item
        for item in items
        if shape(area).intersects(shape(item["geometry"]))
        and first <= when(item) <= last
        and (max_cloud is None or item["properties"]["eo:cloud_cover"] <= max_cloud)
    ]
    return [item["id"] for item in sorted(kept, key=lambda item: (when(item), item["id"]))]


def _period(items) -> tuple[date, date]:
    """The middle half of the archive's days."""
    days = sorted({item["properties"]["datetime"][:10] for item in items})
    return date.fromisoformat(days[len(days) // 4]), date.fromisoformat(days[-len(days) // 4])


@pytest.mark.services
@pytest.mark.parametrize("max_cloud", [None, 20.0])
def test_search_matches_the_archive(
    loaded_stac_api: pgstac.StacEndpoint, small_archive_items: list[dict], max_cloud
) -> None:
    items = small_archive_items
    area = shape(items[len(items) // 2]["geometry"]).centroid.buffer(0.001)
    start, end = _period(items)
    expected = _expected(items, area, start, end, max_cloud)
    assert expected, "the chosen area and period select nothing"

    found = catalog.search(
        "local",
        loaded_stac_api.url,
        area,
        start,
        end,
        max_cloud,
        limit=7,  # several pages
    )

    assert [item["id"] for item in found] == expected
    assert all("proj:epsg" in item["properties"] for item in found)


@pytest.mark.services
def test_search_takes_geojson(
    loaded_stac_api: pgstac.StacEndpoint, small_archive_items: list[dict]
) -> None:
    start, end = _period(small_archive_items)
    area = mapping(shape(small_archive_items[0]["geometry"]).centroid.buffer(0.001))
    expected = _expected(small_archive_items, area, start, end, 50.0)

    found = catalog.search("local", loaded_stac_api.url, area, start, end, 50.0)

    assert [item["id"] for item in found] == expected
