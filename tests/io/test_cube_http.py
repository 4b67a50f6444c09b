"""Cubes read over HTTP from the cloud stand-in (nampo.services.assets): the same values
as from local disk, with a bounded number of requests, through 503s and dropped
connections; an asset that keeps failing is a skipped scene; an expired signature is
signed again once."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from nampo.errors import CubeWarning
from nampo.io.cube import read_cube, skipped_scenes
from nampo.io.cube import stackstac_reader as reader_mod
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import NormalisedItem, normalise
from nampo.services.assets import AssetServer, Faults
from nampo.services.assets.archive import served_items
from nampo.sites import Site

BANDS = ["blue", "red", "nir", "swir16", "scl"]
FLAKY = Faults(error_share=0.10, drop_share=0.03, seed=11)


@pytest.fixture(scope="module")
def site(mini_archive) -> Site:
    return Site.from_scenario(mini_archive.scenario, tile_px=64, baseline_months=3)


@pytest.fixture(scope="module")
def items(mini_archive) -> list[dict]:
    lines = (mini_archive.path / "items.ndjson").read_text().splitlines()
    every = [json.loads(x) for x in lines]
    return [i for i in every if i["properties"]["datetime"].startswith("2022-01")]


@pytest.fixture
def server(mini_archive) -> Iterator[AssetServer]:
    # A server (a new port, so new URLs) per test: GDAL caches what it fetched by URL.
    reader_mod.OPEN_FILES.clear()
    with AssetServer(mini_archive.path) as server:
        yield server
    reader_mod.OPEN_FILES.clear()


GDAL = GdalSettings(http_retry_delay=0.01)
"""GDAL's retry delay (1 s, doubled) shortened: the tests wait for nothing."""


def read(scenes, grid, bands=BANDS, **kwargs):
    return read_cube(scenes, grid, bands, **{"gdal": GDAL, **kwargs})


def local(items) -> list[NormalisedItem]:
    return [normalise(i) for i in items]


def remote(items, root: Path, url_of: Callable[[Path], str]) -> list[NormalisedItem]:
    return [normalise(i) for i in served_items(items, root, url_of)]


def with_hrefs(scene: NormalisedItem, change: Callable[[str], str]) -> NormalisedItem:
    stac = copy.deepcopy(scene.stac)
    for asset in stac["assets"].values():
        asset["href"] = change(asset["href"])
    return normalise(stac)


def assert_same_cube(a, b) -> None:
    assert list(a.id.values) == list(b.id.values)
    assert a.dtype == b.dtype and np.array_equal(a.values, b.values)
    assert a.attrs == b.attrs


def test_a_cube_over_http_is_the_cube_from_disk(mini_archive, items, site, server):
    scenes = remote(items, mini_archive.path, server.url_of)
    tile_a, tile_b = site.tiles[:2]
    for tile in (tile_a, tile_b):
        grid = site.tile_grid(tile)
        assert_same_cube(read(scenes, grid), read(local(items), grid))
    traffic = server.traffic()
    files = traffic.files
    assert files <= len(items) * len(BANDS)
    # Each file opened once for both tiles (kept across units): one HEAD each; every other
    # request a header or block read.
    assert traffic.heads == files
    assert traffic.statuses == {200: files, 206: traffic.gets}

    server.reset()
    read(scenes, site.tile_grid(tile_a))  # a unit read again: no open, no HEAD
    assert server.traffic().heads == 0


def test_503s_and_dropped_connections_do_not_change_the_cube(mini_archive, items, site, server):
    server.faults = FLAKY
    scenes = remote(items, mini_archive.path, server.url_of)
    grid = site.tile_grid(site.tiles[0])
    cube = read(scenes, grid)
    statuses = server.traffic().statuses
    assert statuses.get(503, 0) > 0 and statuses.get(0, 0) > 0  # faults did happen
    assert skipped_scenes(cube) == {}
    assert_same_cube(cube, read(local(items), grid))


def _red_of_first_scene(cube, items, root: Path) -> tuple[str, str]:
    """The id of the cube's first scene and the server path of its red band's file."""
    victim = str(cube.id.values[0])
    href = next(i for i in items if i["id"] == victim)["assets"]["red"]["href"]
    return victim, "/" + Path(href).relative_to(root).as_posix()


def test_an_asset_that_keeps_failing_is_a_skipped_scene(mini_archive, items, site, server):
    grid = site.tile_grid(site.tiles[0])
    sound = read(local(items), grid)
    victim, path = _red_of_first_scene(sound, items, mini_archive.path)
    scenes = remote(items, mini_archive.path, server.url_of)
    read(scenes, grid, ["blue"])  # its files open and headers read: blocks fail later

    server.faults = Faults(failing=(path,))
    with pytest.warns(CubeWarning, match=victim):
        cube = read(scenes, grid)
    assert list(skipped_scenes(cube)) == [victim]
    assert "red: cannot read" in skipped_scenes(cube)[victim]
    assert "503" in skipped_scenes(cube)[victim]
    rest = sound.where(sound.id != victim, drop=True).astype(sound.dtype)
    assert np.array_equal(cube.values, rest.values)
    assert list(cube.id.values) == list(rest.id.values)


def test_a_file_that_failed_is_read_again_once_the_server_recovers(
    mini_archive, items, site, server
):
    """GDAL remembers a failed open for the life of the process; a worker that did not
    forget it would lose the scene in every later unit of a backfill."""
    grid = site.tile_grid(site.tiles[0])
    sound = read(local(items), grid)
    victim, path = _red_of_first_scene(sound, items, mini_archive.path)
    scenes = remote(items, mini_archive.path, server.url_of)

    server.faults = Faults(failing=(path,))
    with pytest.warns(CubeWarning, match=victim):
        assert list(skipped_scenes(read(scenes, grid))) == [victim]
    server.faults = Faults()
    server.reset()
    again = read(scenes, grid)  # the next unit on the same worker
    assert skipped_scenes(again) == {}
    assert_same_cube(again, sound)
    assert [s.path for s in server.served() if s.method == "HEAD"] == [path]


def test_a_dropped_connection_on_open_is_retried_and_then_forgotten(mini_archive, server):
    url = server.url_of(next(mini_archive.path.glob("items/*/B04.tif")))
    env = reader_mod._stackstac_env(GDAL)
    server.faults = Faults(drop_share=0.99, seed=1)  # every open attempt dropped
    assert reader_mod.OPEN_FILES.get(url, env) is None
    assert server.traffic().statuses == {0: 3}  # three attempts, then given up
    server.faults = Faults()
    file = reader_mod.OPEN_FILES.get(url, env)  # GDAL did not keep the failure
    assert file is not None and file.width == 64


def test_an_expired_signature_is_signed_again_once(mini_archive, items, site):
    root = mini_archive.path
    grid = site.tile_grid(site.tiles[0])
    reader_mod.OPEN_FILES.clear()
    with AssetServer(root, signed=True) as server:
        plain = remote(items, root, lambda p: server.url_of(p).split("?")[0])
        calls: list[str] = []

        def sign(scene: NormalisedItem) -> NormalisedItem:
            # The first token handed out has expired by the time it is used (as a cached
            # Planetary Computer token can during a long read); the next ones are fresh.
            lifetime = -1.0 if len(calls) < len(plain) else 2700.0
            calls.append(scene.id)
            return with_hrefs(scene, lambda href: server.sign(href, lifetime))

        cube = read(plain, grid, sign=sign)
        assert server.traffic().statuses.get(403, 0) > 0
        assert set(Counter(calls).values()) == {2}  # signed, then signed again once
        assert skipped_scenes(cube) == {}
        assert_same_cube(cube, read(local(items), grid))

        # Tokens that are always expired: signed again once, then every scene is skipped
        # and named, not read as nodata.
        calls.clear()
        reader_mod.OPEN_FILES.clear()

        def stale(scene: NormalisedItem) -> NormalisedItem:
            calls.append(scene.id)
            return with_hrefs(scene, lambda href: server.sign(href, -1.0))

        grid_b = site.tile_grid(site.tiles[1])
        with pytest.warns(CubeWarning):
            cube = read(plain, grid_b, sign=stale)
        assert set(Counter(calls).values()) == {2}
        assert cube.sizes["time"] == 0
        assert all("403" in reason for reason in skipped_scenes(cube).values())
    reader_mod.OPEN_FILES.clear()


@pytest.mark.parametrize(
    ("href", "remote"),
    [
        ("https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/B04.tif", True),
        ("s3://sentinel-cogs/x/B04.tif", True),
        ("/vsicurl/https://example.org/B04.tif", True),
        ("/vsis3/bucket/B04.tif", True),
        ("/data/items/x/B04.tif", False),
        ("file:///data/items/x/B04.tif", False),
        ("/vsimem/B04.tif", False),
    ],
)
def test_remote_hrefs_are_told_from_local_files(href, remote):
    from nampo.io.cube import preflight

    assert preflight.is_remote(href) is remote


def test_read_threads_must_be_positive(items, site):
    from nampo.errors import CubeError

    with pytest.raises(CubeError, match="read_threads must be >= 1, not 0"):
        read(local(items), site.tile_grid(site.tiles[0]), read_threads=0)


def test_local_files_read_on_threads_give_the_same_cube(items, site):
    grid = site.tile_grid(site.tiles[0])
    assert_same_cube(read(local(items), grid, read_threads=4), read(local(items), grid))


def test_read_ahead_serves_the_next_tiles_from_the_block_cache(mini_archive, items, site, server):
    """With the site's grid as `prefetch`, each file's blocks under the site are read when
    it is opened: the site's other tiles then make no request at all, and read the same
    values as from disk."""
    scenes = remote(items, mini_archive.path, server.url_of)
    first, *others = site.tiles
    read(scenes, site.tile_grid(first), prefetch=site.grid)
    opened = server.traffic()
    assert opened.heads == opened.files  # each file opened once
    assert opened.gets <= 3 * opened.files  # header, then the site's blocks (1-2 ranges)
    server.reset()
    for tile in others:
        grid = site.tile_grid(tile)
        got = read(scenes, grid, prefetch=site.grid)
        assert_same_cube(got, read(local(items), grid))
    assert server.traffic().requests == 0


def test_the_read_ahead_budget_decides_the_read_ahead_and_the_block_cache(items, site, server):
    """``prefetch_mb`` (``NAMPO_READ_AHEAD_MIB``): 0 reads window by window with GDAL's
    block cache as set; a budget the site's blocks fit in reads them ahead, the cache
    raised by the budget; a budget they do not fit in reads window by window. (The mini
    archive's files are ~12 KB, fetched whole with their header whatever the budget: the
    bytes saved are measured by benchmarks/cloud.py.)"""
    from nampo.io.cube import _read_ahead

    scenes = remote(items, Path("/"), lambda p: f"{server.url}{p}")
    grid = site.tile_grid(site.tiles[0])

    def ahead(budget: int):
        return _read_ahead(site.grid, scenes, grid, BANDS, "stackstac", 16, GDAL, budget)

    assert ahead(0) == (None, GDAL)
    bounds, gdal = ahead(256)
    assert bounds == site.grid.bounds and gdal.cache_max_mb == GDAL.cache_max_mb + 256
    px = site.grid.width * site.grid.height
    decoded_mib = 1.5 * 2 * px * len(scenes) * len(BANDS) / 2**20  # the bound's estimate
    assert decoded_mib > 1
    assert ahead(int(decoded_mib) // 8) == (None, GDAL)


def test_operator_settings_become_the_units_reading(monkeypatch):
    from nampo.io.cube import Reading
    from nampo.settings import Settings

    monkeypatch.setenv("NAMPO_READ_THREADS", "8")
    monkeypatch.setenv("NAMPO_READ_AHEAD_MIB", "0")
    monkeypatch.setenv("NAMPO_GDAL_CACHE_MIB", "128")
    reading = Reading.from_settings(Settings(), loader="odc")
    assert (reading.loader, reading.read_threads, reading.read_ahead_mib) == ("odc", 8, 0)
    assert reading.gdal.cache_max_mb == 128 and reading.sign is None
    for name in ("NAMPO_READ_THREADS", "NAMPO_READ_AHEAD_MIB", "NAMPO_GDAL_CACHE_MIB"):
        monkeypatch.delenv(name)
    assert Reading.from_settings(Settings()) == Reading()  # nampo's defaults


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NAMPO_READ_THREADS", "0"),
        ("NAMPO_READ_THREADS", "many"),
        ("NAMPO_READ_AHEAD_MIB", "-1"),
        ("NAMPO_GDAL_CACHE_MIB", "2"),
        ("NAMPO_GDAL_CACHE_MIB", "1e9"),
    ],
)
def test_bad_read_settings_are_refused_naming_the_variable(monkeypatch, name, value):
    from nampo.errors import NampoError
    from nampo.settings import Settings

    monkeypatch.setenv(name, value)
    with pytest.raises(NampoError, match=f"{name}='{value}'"):
        Settings()


def test_a_reading_refuses_values_no_unit_could_use():
    from nampo.errors import CubeError
    from nampo.io.cube import Reading

    with pytest.raises(CubeError, match="read_threads must be an integer from 1 to 256, not 0"):
        Reading(read_threads=0)
    with pytest.raises(CubeError, match="read_ahead_mib must be an integer >= 0"):
        Reading(read_ahead_mib=-5)
    with pytest.raises(CubeError, match="unknown loader 'gdal'"):
        Reading(loader="gdal")  # type: ignore[arg-type]


def test_a_503_on_the_read_ahead_is_retried_in_place(tmp_path):
    """The read-ahead's range answered 503 a few times (fewer than GDAL_HTTP_MAX_RETRY) is
    retried as it was: one range, and the windows read after it make no request. (With
    the retries exhausted GDAL does not fail the read: it fetches the file sequentially
    in doubling chunks, 128 KiB, 256 KiB, ..., several requests and more bytes: measured
    while investigating the varying request counts under faults, docs/benchmarks.md.)"""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as copy_raster
    from rasterio.transform import from_origin

    # A COG larger than GDAL's first read (16 KB), so the read-ahead is a request of its own.
    pixels = np.random.default_rng(0).integers(0, 10_000, (1024, 1024), dtype=np.uint16)
    transform = from_origin(700_000.0, 4_300_000.0, 10.0, 10.0)
    profile = dict(driver="GTiff", width=1024, height=1024, count=1, dtype="uint16")
    with MemoryFile() as mem:
        with mem.open(**profile, crs="EPSG:32651", transform=transform) as ds:
            ds.write(pixels, 1)
        with mem.open() as ds:
            copy_raster(ds, tmp_path / "B04.tif", driver="COG", blocksize=256, compress="DEFLATE")
    env = reader_mod._stackstac_env(GdalSettings(http_max_retry=5, http_retry_delay=0.01))
    bounds = (700_000.0, 4_300_000.0 - 5120.0, 710_240.0, 4_300_000.0)  # the upper half
    reader_mod.OPEN_FILES.clear()
    with AssetServer(tmp_path) as server:
        url = server.url_of(tmp_path / "B04.tif")
        file = reader_mod.OPEN_FILES.get(url, env)  # opened: HEAD and header
        assert file is not None
        server.faults = Faults(burst=3)  # the next 3 requests: 503
        server.reset()
        reader_mod._read_ahead(file, bounds, env)
        assert [s.status for s in server.served()] == [503, 503, 503, 206]
        server.reset()
        with file.lock, env.read:
            got = file.ds.read(1, window=rasterio.windows.Window(256, 128, 300, 300))
        assert server.traffic().requests == 0  # from GDAL's block cache
        assert np.array_equal(got, pixels[128:428, 256:556])
    reader_mod.OPEN_FILES.clear()
