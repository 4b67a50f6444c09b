"""The cloud stand-in (nampo.services.assets): byte ranges as object storage serves them,
the fault layer, signed URLs that expire, and the count of requests and bytes; read by
plain HTTP clients and by GDAL itself."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio

from nampo.errors import ServiceError
from nampo.io.gdal import GdalSettings
from nampo.services.assets import AssetServer, Faults
from nampo.services.assets.archive import served_items, write_served_archive

CONTENT = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "items" / "a").mkdir(parents=True)
    (tmp_path / "items" / "a" / "B04.tif").write_bytes(CONTENT)
    (tmp_path.parent / "outside.txt").write_text("secret")
    return tmp_path


def fetch(url: str, method: str = "GET", headers: dict | None = None):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_ranges_heads_and_missing_files_answer_as_object_storage(folder: Path):
    with AssetServer(folder) as server:
        url = server.url_of(folder / "items" / "a" / "B04.tif")
        assert url == f"{server.url}/items/a/B04.tif" and server.url.startswith("http://127.0.0.1:")
        status, headers, body = fetch(url, headers={"Range": "bytes=100-199"})
        assert (status, body) == (206, CONTENT[100:200])
        assert headers["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
        assert fetch(url, headers={"Range": "bytes=-10"})[2] == CONTENT[-10:]
        assert fetch(url, headers={"Range": "bytes=10000-"})[2] == CONTENT[10000:]
        status, headers, body = fetch(url, "HEAD")
        assert (status, headers["Content-Length"], body) == (200, str(len(CONTENT)), b"")
        assert fetch(url)[2] == CONTENT
        assert fetch(url, headers={"Range": "bytes=20000-"})[0] == 416
        assert fetch(url, headers={"Range": "bytes=0-1,5-6"})[0] == 416  # one range a request
        assert fetch(f"{server.url}/items/a/B08.tif")[0] == 404
        assert fetch(f"{server.url}/../outside.txt")[0] == 404  # nothing outside the root

        traffic = server.traffic()
        assert (traffic.requests, traffic.gets, traffic.heads) == (9, 8, 1)
        data = sum(s.bytes for s in server.served() if s.status in (200, 206))
        assert data == 100 + 10 + 240 + len(CONTENT)
        assert traffic.bytes == sum(s.bytes for s in server.served()) > data  # + error bodies
        assert traffic.statuses == {206: 3, 200: 2, 416: 2, 404: 2}
        server.reset()
        assert server.traffic().requests == 0


def test_faults_fail_the_drawn_share_of_requests_and_follow_the_seed(folder: Path):
    url_path = "/items/a/B04.tif"

    def statuses(faults: Faults) -> list[int]:
        with AssetServer(folder, faults) as server:
            out = []
            for _ in range(200):
                try:
                    out.append(fetch(server.url + url_path, headers={"Range": "bytes=0-9"})[0])
                except (ConnectionError, http.client.HTTPException):
                    out.append(0)  # dropped: reset without an answer
            assert [s.status for s in server.served()] == out
            return out

    got = statuses(Faults(error_share=0.2, drop_share=0.1, seed=5))
    assert 20 <= got.count(503) <= 60 and 5 <= got.count(0) <= 35
    assert set(got) == {206, 503, 0}
    assert statuses(Faults(error_share=0.2, drop_share=0.1, seed=5)) == got
    assert set(statuses(Faults(latency_ms=1))) == {206}


def test_faults_can_be_switched_while_serving(folder: Path):
    with AssetServer(folder) as server:
        url = server.url_of(folder / "items" / "a" / "B04.tif")
        assert fetch(url)[0] == 200
        server.faults = Faults(error_share=0.999)
        status, _, body = fetch(url)
        assert status == 503 and b"SlowDown" in body
        server.faults = Faults()
        assert fetch(url)[0] == 200


def test_a_burst_fails_the_next_requests_and_then_none(folder: Path):
    """``Faults(burst=N)``: the N requests after the faults are set answer 503, whatever the
    seed, the next ones as usual; setting the faults again starts a new burst."""
    with AssetServer(folder) as server:
        url = server.url_of(folder / "items" / "a" / "B04.tif")
        server.faults = Faults(burst=2)
        assert [fetch(url)[0] for _ in range(4)] == [503, 503, 200, 200]
        assert not Faults(burst=2).clean
        server.faults = Faults(burst=1)
        assert [fetch(url, "HEAD")[0] for _ in range(2)] == [503, 200]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_ms": -1}, "latency_ms must be >= 0"),
        ({"bandwidth_mbps": 0}, "bandwidth_mbps must be > 0"),
        ({"error_share": 1.0}, r"error_share must be in \[0, 1\)"),
        ({"drop_share": -0.1}, r"drop_share must be in \[0, 1\)"),
        ({"error_share": 0.6, "drop_share": 0.5}, "every request would fail"),
        ({"burst": -1}, "burst must be an integer >= 0"),
    ],
)
def test_bad_faults_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Faults(**kwargs)


def test_a_missing_root_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ServiceError, match="not a folder"):
        AssetServer(tmp_path / "nowhere")


def test_signed_urls_expire(folder: Path):
    with AssetServer(folder, signed=True) as server:
        url = server.url_of(folder / "items" / "a" / "B04.tif")
        assert "se=" in url and "sig=" in url
        assert fetch(url)[0] == 200
        unsigned = url.split("?")[0]
        assert fetch(unsigned)[0] == 403
        assert fetch(unsigned + "?se=99999999999&sig=00")[0] == 403  # forged
        short = server.sign(unsigned, lifetime=60)
        server.clock_offset = 120  # two minutes later
        status, _, body = fetch(short)
        assert status == 403 and b"expiry" in body
        assert fetch(server.sign(short))[0] == 200  # signed again: readable


def test_gdal_reads_the_same_pixels_through_faults(mini_archive):
    """GDAL over HTTP reads what it reads from disk, also when requests fail on the way:
    its own retries (GDAL_HTTP_MAX_RETRY) cover 503s and reset connections."""
    files = sorted((mini_archive.path / "items").glob("*51SYC*/B04.tif"))[:12]
    gdal = GdalSettings(http_retry_delay=0.01)
    faults = Faults(error_share=0.15, drop_share=0.05, seed=2)
    with AssetServer(mini_archive.path, faults) as server:
        for path in files:
            with gdal.env("read"), rasterio.open(server.url_of(path)) as remote:
                got = remote.read(1)
            with rasterio.open(path) as local:
                assert np.array_equal(got, local.read(1)), path
        traffic = server.traffic()
    assert traffic.statuses.get(503, 0) > 0 and traffic.statuses.get(0, 0) > 0
    assert traffic.files == len(files)


def test_an_archive_is_served_with_http_hrefs(mini_archive, tmp_path: Path):
    root = mini_archive.path
    with AssetServer(root) as server:
        out = write_served_archive(root, tmp_path / "served", server.url_of, "s2-http")
        items = [json.loads(x) for x in (out / "items.ndjson").read_text().splitlines()]
        assert json.loads((out / "collection.json").read_text())["id"] == "s2-http"
        originals = [json.loads(x) for x in (root / "items.ndjson").read_text().splitlines()]
        assert [i["id"] for i in items] == [i["id"] for i in originals]
        first, orig = items[0], originals[0]
        assert first["collection"] == "s2-http"
        for key, asset in first["assets"].items():
            rel = Path(orig["assets"][key]["href"]).relative_to(root)
            assert asset["href"] == f"{server.url}/{rel.as_posix()}"
        assert fetch(first["assets"]["red"]["href"], "HEAD")[0] == 200
    # Hrefs outside the root stay as they are.
    other = {"id": "x", "assets": {"a": {"href": "/elsewhere/B04.tif"}}}
    assert served_items([other], root, server.url_of)[0]["assets"]["a"]["href"] == (
        "/elsewhere/B04.tif"
    )


@pytest.mark.services
def test_stac_up_serves_the_assets_and_stac_down_stops_them(mini_archive, monkeypatch, capsys):
    """``nampo stac up --serve-assets``: the catalog's items point at the stand-in, whose
    files read as the local ones; ``nampo stac down`` stops it with the API."""
    from shapely.geometry import box

    from nampo.cli import main
    from nampo.io import catalog
    from nampo.services import pgstac
    from nampo.services.assets import background

    # A home of its own: the session's STAC API must keep its local hrefs.
    home = Path(tempfile.mkdtemp(prefix="nampo-test-assets-home-"))
    monkeypatch.setenv("NAMPO_HOME", str(home))
    state = home / "stac"
    try:
        code = main(
            ["stac", "up", "--archive", str(mini_archive.path), "--serve-assets",
             "--latency-ms", "2"]
        )  # fmt: skip
        assert code == 0
        (served,) = background.running(state)
        assert served.url.startswith("http://127.0.0.1:")
        assert f"served at {served.url}" in capsys.readouterr().out
        assert main(["stac", "status"]) == 0
        assert served.url in capsys.readouterr().out

        url = pgstac.read_endpoint(state).url
        scenes = catalog.search_scenes(
            "local",
            url,
            box(125.3, 38.6, 125.5, 38.8),
            dt.date(2022, 1, 1),
            dt.date(2022, 1, 31),
            None,
        )
        assert scenes and all(
            b.href.startswith(served.url) for s in scenes for b in s.bands.values()
        )
        href = scenes[0].bands["red"].href
        local_path = mini_archive.path / href.removeprefix(served.url + "/")
        with rasterio.open(href) as remote, rasterio.open(local_path) as local:
            assert np.array_equal(remote.read(1), local.read(1))
    finally:
        assert main(["stac", "down"]) == 0
        shutil.rmtree(home, ignore_errors=True)
    assert background.running(state) == [] and not background._alive(served.pid)


def test_fault_options_need_serve_assets(monkeypatch, tmp_path, capsys):
    from nampo.cli import main

    monkeypatch.setenv("NAMPO_HOME", str(tmp_path))
    assert main(["stac", "up", "--latency-ms", "40"]) != 0
    assert "need --serve-assets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stac", "up", "--serve-assets", "--error-share", "1.5"])
    assert "expected a share in [0, 1)" in capsys.readouterr().err
