"""nampo.io.catalog: profiles, signing hooks, errors, retries against faulty loopback servers,
and search against the local STAC API. (Replays of recorded pages: test_catalog_replay.py.)"""

from __future__ import annotations

import email.utils
import socket
import sys
import time
import types
from datetime import UTC, date, datetime, timedelta
from datetime import time as daytime

import pytest
from shapely.geometry import mapping, shape

from nampo.errors import CatalogError
from nampo.io import catalog
from nampo.services import pgstac
from tests.loopback import ES_ROOT, Faulty, LoopbackServer, Replay, Reply, refuse_other_hosts

NAMPO_BOX = {
    "type": "Polygon",
    "coordinates": [[[125.3, 38.7], [125.5, 38.7], [125.5, 38.8], [125.3, 38.8], [125.3, 38.7]]],
}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch) -> None:
    refuse_other_hosts(monkeypatch)


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


# ---------------------------------------------------------------------------- retries

BOULDER = {"type": "Point", "coordinates": [-105.1019, 40.1672]}
DAY = date(2023, 10, 8)
PAGES = ["es_v1_search_s2l2a_landsat_page1.json", "es_v1_search_s2l2a_landsat_page2_empty.json"]


@pytest.fixture
def es_api(shared):
    """A loopback server replaying the recorded Earth Search search, with faults first.

    ``es_api({("POST", "/search"): [Reply(503), ...]})`` -> the running server.
    """
    servers = []

    def start(faults: dict) -> LoopbackServer:
        replay = Replay(shared / "data" / "real", ES_ROOT, "es_v1_landing.json", PAGES)
        server = LoopbackServer(Faulty(replay, faults))
        replay.url = server.url
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _policy(waits: list[float], **kwargs) -> catalog.RetryPolicy:
    """A policy that records its waits instead of sleeping."""
    return catalog.RetryPolicy(sleep=waits.append, **kwargs)


def _search(server: LoopbackServer, policy: catalog.RetryPolicy, timeout: float = 5.0):
    return catalog.search(
        "earth-search",
        server.url,
        BOULDER,
        DAY,
        DAY,
        None,
        sign=False,
        timeout=timeout,
        retry=policy,
    )


def test_retry_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="attempts"):
        catalog.RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="budget"):
        catalog.RetryPolicy(budget=0)
    assert catalog.RetryPolicy(backoff=2, backoff_max=5, attempts=5).waits() == [2, 4, 5, 5]


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    assert catalog.parse_retry_after("120") == 120.0
    assert catalog.parse_retry_after(" 3 ") == 3.0
    assert catalog.parse_retry_after("Thu, 26 Nov 2026 10:00:30 GMT", now=now) == 30.0
    assert catalog.parse_retry_after("Thu, 26 Nov 2026 09:59:00 GMT", now=now) == 0.0
    assert catalog.parse_retry_after("-5") is None
    assert catalog.parse_retry_after(None) is None


def test_429_retry_after_is_waited_for_real(es_api) -> None:
    server = es_api({("POST", "/search"): [Reply(429, "slow down", {"Retry-After": "1"})]})
    started = time.monotonic()

    items = _search(server, catalog.RetryPolicy(attempts=3, budget=10))

    posts = server.requests("POST", "/search")
    assert len(items) == 2
    assert len(posts) == 3  # 429, the first page again, the (empty) next page
    assert posts[1].at - posts[0].at >= 1.0
    assert posts[1].body == posts[0].body  # the same search was sent again
    assert time.monotonic() - started < 6  # the 1 s asked for, not a backoff of its own


def test_retry_after_as_an_http_date(es_api) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    server = es_api({("POST", "/search"): [Reply(429, "", {"Retry-After": when})]})
    waits: list[float] = []

    assert len(_search(server, _policy(waits))) == 2
    assert len(waits) == 1 and 1.5 < waits[0] <= 3.0  # the date has 1-second resolution


def test_landing_page_503_is_retried_with_backoff(es_api) -> None:
    server = es_api({("GET", "/"): [Reply(503, "busy"), Reply(502, "bad gateway")]})
    waits: list[float] = []

    assert len(_search(server, _policy(waits, backoff=0.5))) == 2
    assert len(server.requests("GET", "/")) == 3
    assert waits == [0.5, 1.0]


def test_a_failing_next_page_is_retried(es_api) -> None:
    # The first page goes through; its POST next link fails twice.
    server = es_api({("POST", "/search"): [None, Reply(500, "oops"), Reply(503, "busy")]})
    waits: list[float] = []

    assert len(_search(server, _policy(waits, backoff=0.25))) == 2
    posts = server.requests("POST", "/search")
    assert len(posts) == 4
    assert posts[1].body == posts[2].body == posts[3].body  # the next token each time
    assert "next" in posts[3].body
    assert waits == [0.25, 0.5]


def test_a_stalled_answer_is_retried_after_the_timeout(es_api) -> None:
    server = es_api({("POST", "/search"): [Reply(stall=10.0)]})
    waits: list[float] = []
    started = time.monotonic()

    items = _search(server, _policy(waits, backoff=0.1), timeout=0.3)

    assert len(items) == 2
    assert len(server.requests("POST", "/search")) == 3
    assert waits == [0.1]
    assert time.monotonic() - started < 6  # did not wait for the stalled answer (10 s)


def test_persistent_503_fails_on_one_line_naming_url_and_status(es_api) -> None:
    server = es_api({("POST", "/search"): [Reply(503, "busy")] * 10})
    waits: list[float] = []

    with pytest.raises(CatalogError) as caught:
        _search(server, _policy(waits, attempts=3, backoff=0.1))

    message = str(caught.value)
    assert "\n" not in message
    assert f"POST {server.url}/search failed 3 times" in message
    assert message.endswith("last: HTTP 503 Service Unavailable")
    assert len(server.requests("POST", "/search")) == 3
    assert waits == [0.1, 0.2]


def test_retry_after_beyond_the_budget_gives_up_at_once(es_api) -> None:
    server = es_api({("GET", "/"): [Reply(429, "", {"Retry-After": "3600"})] * 3})
    waits: list[float] = []

    with pytest.raises(CatalogError) as caught:
        _search(server, _policy(waits, budget=60))

    message = str(caught.value)
    assert f"GET {server.url}" in message and "HTTP 429 Too Many Requests" in message
    assert "waiting 3600 s more would pass the 60 s retry budget" in message
    assert len(server.requests("GET", "/")) == 1 and waits == []


def test_persistent_timeouts_fail_naming_the_timeout(es_api) -> None:
    server = es_api({("POST", "/search"): [Reply(stall=3.0)] * 3})
    waits: list[float] = []

    with pytest.raises(CatalogError) as caught:
        _search(server, _policy(waits, attempts=2, backoff=0.05), timeout=0.2)

    message = str(caught.value)
    assert message.startswith(f"STAC API request POST {server.url}/search failed 2 times in ")
    assert message.endswith("; last: no answer within 0.2 s")
    assert len(server.requests("POST", "/search")) == 2


def test_the_budget_bounds_the_whole_request(es_api) -> None:
    server = es_api({("POST", "/search"): [Reply(stall=5.0)] * 3})
    started = time.monotonic()

    with pytest.raises(CatalogError, match="retry budget|no answer within"):
        _search(server, catalog.RetryPolicy(attempts=10, budget=0.6, backoff=0.05), timeout=30)

    assert time.monotonic() - started < 10  # not 30 s per attempt


def test_client_errors_are_not_retried(es_api) -> None:
    server = es_api({("POST", "/search"): [Reply(400, '{"description": "bad bbox"}')]})
    waits: list[float] = []

    with pytest.raises(CatalogError) as caught:
        _search(server, _policy(waits))

    assert str(caught.value) == (
        f'the STAC API at {server.url} answered HTTP 400 Bad Request: {{"description": "bad bbox"}}'
    )
    assert len(server.requests("POST", "/search")) == 1 and waits == []


def test_a_refused_connection_is_not_retried() -> None:
    waits: list[float] = []
    with pytest.raises(CatalogError, match="Connection refused"):
        catalog.search("local", _refused_url(), NAMPO_BOX, DAY, DAY, None, retry=_policy(waits))
    assert waits == []


def test_sign_scene_signs_the_band_hrefs(monkeypatch, shared) -> None:
    import json

    fake = types.SimpleNamespace(sign=lambda href: f"{href}?sig=token")
    monkeypatch.setitem(sys.modules, "planetary_computer", fake)
    real = shared / "data" / "real" / "pc_items_sentinel-2-l2a_4items.json"
    scene = catalog.normalise(json.loads(real.read_text())[0])

    signed = catalog.get_profile("planetary-computer").sign_scene(scene)

    assert signed.bands["red"].href == scene.bands["red"].href + "?sig=token"
    assert not scene.bands["red"].href.endswith("?sig=token")
    assert catalog.get_profile("earth-search").sign_scene(scene) is scene


# --------------------------------------------------------------- against the local API


def _expected(items, area, start: date, end: date, max_cloud) -> list[str]:
    first = datetime.combine(start, daytime.min, tzinfo=UTC)
    last = datetime.combine(end, daytime.max, tzinfo=UTC)

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
