"""nampo.io.store against real components: an S3 server (moto) on loopback, local folders,
GDAL (rasterio's wheel), xarray, and processes writing at the same time. Locations and the
write probe: tests/io/test_store_location.py."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import subprocess
import sys
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from pyproj import CRS

from nampo.errors import StoreError
from nampo.grid import Grid
from nampo.io.store import COMPRESSOR, Store, StoreLocation
from nampo.products.variables import ALL, BASELINE, MONTHLY
from nampo.run.units import Unit, months
from nampo.sites import Site
from tests import store_jobs
from tests.store_helpers import (
    BUCKET,
    KEY,
    SECRET,
    assert_unit_is,
    chunk_keys,
    digests,
    objects,
    s3_settings,
)
from tests.store_jobs import CALENDAR, SITE, unit_ds


@pytest.fixture(scope="module")
def pool():
    """Two worker processes, started before the test needs them. Forked from a fork
    server that imported nampo.io.store and nothing else (forking this process, whose zarr
    and s3fs I/O threads run, is unsafe; spawning costs each worker 3 s of imports)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.store_jobs"])
    with ProcessPoolExecutor(2, mp_context=ctx) as executor:
        assert len(set(executor.map(store_jobs.ready, [0.5, 0.5]))) == 2
        yield executor


# ---------------------------------------------------------------------------- tests


def test_write_units_and_open_with_xarray(location: StoreLocation) -> None:
    store = Store(location).create(SITE, CALENDAR)
    written = [Unit(date(2017, 5, 1), "x01y01"), Unit(date(2018, 12, 1), "x00y00")]
    for unit in written:
        record = store.write_unit(
            unit, unit_ds(SITE.tile(unit.tile_id), unit.month), {"scenes_used": ["S2A_1"]}
        )
        assert record["unit"] == unit.id and record["scenes_used"] == ["S2A_1"]
    store.write_baseline("x01y00", unit_ds(SITE.tile("x01y00"), None, BASELINE), {"n": 3})

    assert store.done() == {"x01y01/2017-05", "x00y00/2018-12", "x01y00/baseline"}
    assert store.record("x01y00/baseline")["n"] == 3
    assert store.record("x01y01/2017-05")["written"].startswith(str(date.today().year))

    # what anyone else does: a plain xarray.open_zarr of the URL, without zarr warnings
    # (locally without the consolidated metadata, on S3 with it: both must work)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(
            location.url,
            storage_options=dict(location.storage_options) or None,
            consolidated=False if location.is_local else None,
        )
    assert list(ds.data_vars) and set(ds.data_vars) == {v.name for v in ALL}
    assert "nampo" not in ds.variables
    for v in MONTHLY:
        assert ds[v.name].dims == ("time", "y", "x")
        assert ds[v.name].encoding["chunks"] == (1, 64, 64)
        assert ds[v.name].attrs["grid_mapping"] == "spatial_ref"
    for v in BASELINE:
        assert ds[v.name].dims == ("y", "x")
        assert ds[v.name].encoding["chunks"] == (64, 64)
    assert ds["ndvi"].encoding["compressors"] == (COMPRESSOR,)
    x, y = SITE.grid.xy_coords()
    np.testing.assert_array_equal(ds.x.values, x)
    np.testing.assert_array_equal(ds.y.values, y)
    assert ds.x.attrs["standard_name"] == "projection_x_coordinate"
    assert ds.y.attrs["units"] == "m"
    assert [t.date() for t in ds.indexes["time"]] == CALENDAR
    assert "spatial_ref" in ds.coords
    sr = ds.spatial_ref.attrs
    assert CRS.from_cf(sr) == CRS.from_epsg(32651)
    assert CRS.from_wkt(sr["spatial_ref"]).to_epsg() == 32651
    assert [float(v) for v in sr["GeoTransform"].split()] == list(SITE.grid.transform.to_gdal())
    assert ds.attrs["nampo_site"] == "teststore" and ds.attrs["nampo_tile_px"] == 64
    assert ds.attrs["nampo_calendar"][0] == "2017-01" and len(ds.attrs["nampo_calendar"]) == 24

    # written tiles read back exactly, everything else is fill
    opened = store.open()
    assert list(opened.data_vars) == [v.name for v in ALL]
    assert opened["clear_count"].dtype == np.uint8 and opened["base_clear_count"].dtype == "uint16"
    unit = written[0]
    tile, t = SITE.tile(unit.tile_id), CALENDAR.index(unit.month)
    want = unit_ds(tile, unit.month)
    got = opened.isel(time=t, y=slice(*tile.rows), x=slice(*tile.cols)).compute()
    for v in MONTHLY:
        np.testing.assert_array_equal(got[v.name].values, want[v.name].values)
        assert got[v.name].dtype == v.dtype
    assert_unit_is(store, written[1])  # the same, read the way write_unit writes
    baseline = store.read_baseline("x01y00")
    for v in BASELINE:
        np.testing.assert_array_equal(
            baseline[v.name].values, unit_ds(SITE.tile("x01y00"), None, BASELINE)[v.name].values
        )
    unwritten = opened.isel(time=CALENDAR.index(date(2017, 5, 1)), y=slice(0, 64), x=slice(0, 64))
    assert np.isnan(unwritten["ndvi"].values).all()
    assert (unwritten["landcover"].values == 0).all()
    assert np.isnan(ds["ndvi"].isel(time=0).values).all()  # masked view: NaN too
    assert np.isnan(opened["base_ndvi"].isel(y=slice(64, None), x=slice(0, 64)).values).all()

    # a unit is exactly its own chunks and its record: nothing else in the store changed
    before = objects(store)
    unit = Unit(date(2017, 2, 1), "x00y01")
    store.write_unit(unit, unit_ds(SITE.tile("x00y01"), unit.month))
    after = objects(store)
    new = set(after) - set(before)
    assert new == {*chunk_keys(unit), "nampo/units/x00y01/2017-02.json"}
    assert all(after[k] == v for k, v in before.items())


def test_gdal_reads_crs_transform_and_values(tmp_path: Path) -> None:
    store = Store(tmp_path / "site.zarr").create(SITE, CALENDAR)
    unit = Unit(date(2017, 5, 1), "x01y01")
    tile = SITE.tile(unit.tile_id)
    want = unit_ds(tile, unit.month)
    store.write_unit(unit, want)
    store.write_baseline(tile, unit_ds(tile, None, BASELINE))
    rows, cols = slice(*tile.rows), slice(*tile.cols)

    with rasterio.open(f'ZARR:"{store.url}":/ndvi') as src:
        assert src.crs.to_epsg() == 32651
        assert src.transform == SITE.grid.transform
        assert (src.count, src.height, src.width) == (len(CALENDAR), 120, 120)
        assert np.isnan(src.nodata)
        band = src.read(CALENDAR.index(unit.month) + 1)  # one band per month
        np.testing.assert_array_equal(band[rows, cols], want["ndvi"].values)
        assert np.isnan(band[:64, :64]).all()
    with rasterio.open(f'ZARR:"{store.url}":/landcover') as src:
        assert src.nodata == 0 and src.dtypes[0] == "uint8"
        band = src.read(CALENDAR.index(unit.month) + 1)
        np.testing.assert_array_equal(band[rows, cols], want["landcover"].values)
    with rasterio.open(f'ZARR:"{store.url}":/base_clear_count') as src:
        assert src.crs.to_epsg() == 32651 and src.transform == SITE.grid.transform
        assert src.count == 1 and src.dtypes[0] == "uint16"
        base = unit_ds(tile, None, BASELINE)["base_clear_count"].values
        np.testing.assert_array_equal(src.read(1)[rows, cols], base)
    # the store as a whole: one subdataset per array, none from the records folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(f'ZARR:"{store.url}"') as src:
            names = {s.rsplit(":/", 1)[-1] for s in src.subdatasets}
    assert {v.name for v in ALL} <= names and not any("nampo" in n for n in names)


def test_gdal_reads_the_s3_store(s3_endpoint: str) -> None:
    # GDAL's own S3 client (/vsis3/), as QGIS or gdalinfo would use it
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/site.zarr"
    store = Store(StoreLocation.from_settings(url, s3_settings(s3_endpoint))).create(SITE, CALENDAR)
    unit = Unit(date(2018, 2, 1), "x00y01")
    tile = SITE.tile(unit.tile_id)
    want = unit_ds(tile, unit.month)
    store.write_unit(unit, want)
    # In a process of its own, as QGIS or gdalinfo would read it: GDAL's /vsis3/ state in
    # this long test process (caches, thread-local options left by earlier loads) has made
    # this read fail after other test modules, though never on its own.
    script = """
import json, sys
import numpy as np, rasterio
from rasterio.session import AWSSession
endpoint, key, secret, path, band = sys.argv[1:]
session = AWSSession(aws_access_key_id=key, aws_secret_access_key=secret, endpoint_url=endpoint)
with rasterio.Env(session=session, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE"):
    with rasterio.open(path) as src:
        np.save(sys.stdout.buffer, src.read(int(band)))
        meta = {"epsg": src.crs.to_epsg(), "transform": list(src.transform)[:6]}
        sys.stderr.write(json.dumps(meta))
"""
    path = f'ZARR:"/vsis3/{url.removeprefix("s3://")}":/ndvi'
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            s3_endpoint.removeprefix("http://"),
            KEY,
            SECRET,
            path,
            str(CALENDAR.index(unit.month) + 1),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    meta = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert meta["epsg"] == 32651
    assert tuple(meta["transform"]) == tuple(SITE.grid.transform)[:6]
    band = np.load(io.BytesIO(done.stdout))
    np.testing.assert_array_equal(band[slice(*tile.rows), slice(*tile.cols)], want.ndvi.values)


def test_create_is_a_no_op_the_second_time_and_names_differences(
    location: StoreLocation,
) -> None:
    store = Store(location).create(SITE, CALENDAR)
    unit = Unit(date(2017, 3, 1), "x00y00")
    store.write_unit(unit, unit_ds(SITE.tile("x00y00"), unit.month))
    before = objects(store)
    mtimes = {str(p): p.stat().st_mtime_ns for p in Path(store.url).rglob("*")}

    again = Store(location).create(SITE, CALENDAR)
    assert objects(store) == before  # nothing rewritten (for S3: same ETags and times)
    if location.is_local:
        assert {str(p): p.stat().st_mtime_ns for p in Path(store.url).rglob("*")} == mtimes
    assert again.calendar == tuple(CALENDAR) and again.site == SITE

    g = SITE.grid
    others = {
        "grid x0 709160 in the store, 709170 asked": Site(
            "teststore", "t", Grid(32651, 10, 709170, 4289200, 120, 120), 64
        ),
        "grid epsg 32651 in the store, 32652 asked": Site(
            "teststore", "t", Grid(32652, 10, g.x0, g.y0, 120, 120), 64
        ),
        "tile_px 64 in the store, 32 asked": Site("teststore", "t", g, 32),
        "site 'teststore' in the store, 'other' asked": Site("other", "t", g, 64),
    }
    for message, site in others.items():
        with pytest.raises(StoreError, match=message):
            Store(location).create(site, CALENDAR)
    with pytest.raises(StoreError, match=r"calendar 2017-01..2018-12 \(24 months\) in the store, "):
        Store(location).create(SITE, months(date(2017, 1, 1), date(2019, 12, 1)))
    with pytest.raises(StoreError, match=r"in the store, 2017-02..2018-12 \(23 months\) asked"):
        Store(location).create(SITE, CALENDAR[1:])
    assert objects(store) == before

    # a store's layout is known from the store alone (what a worker gets)
    reopened = Store(location)
    assert reopened.site.grid == SITE.grid and reopened.calendar == tuple(CALENDAR)


def test_create_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(StoreError, match=r"holds other files \(holiday.jpg\)"):
        Store(folder).create(SITE, CALENDAR)
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]
    with pytest.raises(StoreError, match="no nampo store at"):
        Store(tmp_path / "nothing.zarr").open()


def test_create_finishes_an_interrupted_creation(tmp_path: Path) -> None:
    store = Store(tmp_path / "site.zarr")
    assert not store.exists()
    store.create(SITE, CALENDAR)
    # as if the creating process died before its last writes
    (tmp_path / "site.zarr/.zmetadata").unlink()
    (tmp_path / "site.zarr/ndvi/.zarray").unlink()
    (tmp_path / "site.zarr/.zmetadata.0123abcd.partial").write_bytes(b"{")  # a torn write
    assert not Store(store.location).exists()
    with pytest.raises(StoreError, match="create also finishes a creation that was interrupted"):
        Store(store.location).open()
    Store(store.location).create(SITE, CALENDAR)
    assert digests(store) == digests(Store(tmp_path / "fresh.zarr").create(SITE, CALENDAR)) | {
        ".zmetadata.0123abcd.partial": hashlib.md5(b"{").hexdigest()
    }
    assert Store(store.location).open()["ndvi"].shape == (len(CALENDAR), 120, 120)


def test_bad_units_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "site.zarr").create(SITE, CALENDAR)
    unit = Unit(date(2017, 4, 1), "x01y00")
    tile = SITE.tile(unit.tile_id)
    good = unit_ds(tile, unit.month)
    before = objects(store)
    wide = unit_ds(SITE.tile("x00y00"), unit.month)  # 64 x 64 where the tile is 64 x 56
    bad = {
        "ndvi has dtype float64, expected float32": good.assign(ndvi=good.ndvi.astype("f8")),
        "landcover has dtype int64, expected uint8": good.assign(
            landcover=good.landcover.astype("i8")
        ),
        "missing variables ndvi, cva_base": good.drop_vars(["ndvi", "cva_base"]),
        "unknown variables extra": good.assign(extra=good.ndvi),
        r"red has shape \(64, 64\), expected \(64, 56\)": wide.drop_vars(["x", "y"]),
        "nir has dims": good.assign(nir=good.nir.transpose("x", "y")),
        "coordinate x is not tile x01y00's pixel centres": good.assign_coords(x=good.x - 10),
        "coordinate time is": good.assign_coords(time=np.datetime64("2017-05-01", "ns")),
    }
    for message, ds in bad.items():
        with pytest.raises(
            StoreError, match=f"unit x01y00/2017-04 refused, nothing written: .*{message}"
        ):
            store.write_unit(unit, ds, {"scenes": ["a"]})
    with pytest.raises(StoreError, match="month 2019-01 is not in the store's calendar"):
        store.write_unit(Unit(date(2019, 1, 1), "x01y00"), good)
    with pytest.raises(StoreError, match="has no tile 'x05y00'"):
        store.write_unit(Unit(date(2017, 4, 1), "x05y00"), good)
    with pytest.raises(StoreError, match="record is not JSON"):
        store.write_unit(unit, good, {"what": object()})
    with pytest.raises(StoreError, match="record fields unit are reserved"):
        store.write_unit(unit, good, {"unit": "x"})
    with pytest.raises(StoreError, match="refused, nothing written: missing variables base_"):
        store.write_baseline(tile, good)
    assert objects(store) == before and store.done() == set()

    # the same dataset as dask arrays, good this time: written
    store.write_unit(unit, good.chunk({"y": 32}), {"dates": {date(2017, 4, 3)}})
    assert store.done() == {unit.id} and store.record(unit.id)["dates"] == ["2017-04-03"]


def test_processes_create_and_write_at_the_same_time(
    location: StoreLocation, pool, tmp_path: Path
) -> None:
    # both create the same new store at the same instant: both succeed, one valid store
    job = store_jobs.job
    start = time.time() + 0.3
    pids = list(pool.map(job, [location] * 2, ["create"] * 2, [[], []], [start] * 2))
    assert len(set(pids)) == 2
    store = Store(location)
    assert store.exists() and store.calendar == tuple(CALENDAR)
    serial = Store(tmp_path / "serial.zarr").create(SITE, CALENDAR)
    assert digests(store) == digests(serial)  # what one creator alone makes, byte for byte

    # different units and one same unit, written at the same time by two processes
    same = "x01y01/2017-07"
    a = [same, "x00y00/2017-01", "x01y00/2017-03"]
    b = [same, "x00y01/2017-01", "x01y01/2017-03"]
    start = time.time() + 0.3
    list(pool.map(job, [location] * 2, ["write"] * 2, [a, b], [start] * 2))
    assert store.done() == set(a) | set(b)
    assert store.record(same)["pid"] in pids
    assert_unit_is(store, Unit.from_id(same))

    # every chunk has the bytes of the same units written by one process
    for uid in set(a) | set(b):
        unit = Unit.from_id(uid)
        serial.write_unit(unit, unit_ds(SITE.tile(unit.tile_id), unit.month))
    found = digests(store)
    assert {k: v for k, v in found.items() if not k.startswith("nampo/")} == {
        k: v for k, v in digests(serial).items() if not k.startswith("nampo/")
    }
    # and the same unit written once more gives the same bytes again
    unit = Unit.from_id(same)
    store.write_unit(unit, unit_ds(SITE.tile(unit.tile_id), unit.month))
    again = digests(store)
    assert all(again[k] == found[k] for k in chunk_keys(unit))


def test_runs_are_stored_beside_the_records(location: StoreLocation) -> None:
    store = Store(location).create(SITE, CALENDAR)
    store.write_run("run-1", {"skipped_scenes": {"S2B_2": "unreadable"}, "units": 4})
    store.write_run("run-0", {"units": 0})
    runs = store.runs()
    assert list(runs) == ["run-0", "run-1"]
    assert runs["run-1"]["skipped_scenes"] == {"S2B_2": "unreadable"}
    assert runs["run-1"]["run"] == "run-1"
    with pytest.raises(StoreError, match="run id '../x' must be"):
        store.write_run("../x", {})
    assert store.done() == set()


def test_rewriting_a_unit_replaces_its_record(tmp_path: Path) -> None:
    store = Store(tmp_path / "site.zarr").create(SITE, CALENDAR)
    unit = Unit(date(2018, 1, 1), "x00y00")
    ds = unit_ds(SITE.tile("x00y00"), unit.month)
    store.write_unit(unit, ds, {"code": "1"})
    store.write_unit(unit, ds, {"code": "2"})
    assert store.record(unit.id)["code"] == "2"
    with pytest.raises(StoreError, match="x00y00/2018-02 has no completion record"):
        store.record("x00y00/2018-02")
    assert (
        json.loads((tmp_path / "site.zarr/nampo/units/x00y00/2018-01.json").read_text())["code"]
        == "2"
    )


def test_when_events_and_records_were_written(location: StoreLocation) -> None:
    """What the report's staleness check compares, locally (mtime) and on S3
    (LastModified)."""
    store = Store(location).create(SITE, CALENDAR)
    assert store.events_written_at() is None and store.last_completed_at() is None
    unit = Unit(date(2017, 5, 1), "x01y01")
    store.write_unit(unit, unit_ds(SITE.tile(unit.tile_id), unit.month), {})
    completed = store.last_completed_at()
    assert completed is not None and abs(completed - time.time()) < 120
    time.sleep(1.1)  # S3's LastModified has whole seconds
    store.write_events({"events.geojson": b'{"type": "FeatureCollection", "features": []}'})
    written = store.events_written_at()
    assert written is not None and written > completed
    time.sleep(1.1)
    later = Unit(date(2017, 6, 1), "x01y01")
    store.write_unit(later, unit_ds(SITE.tile(later.tile_id), later.month), {})
    assert store.last_completed_at() > written


def test_read_some_variables_of_a_unit(tmp_path: Path) -> None:
    store = Store(tmp_path / "site.zarr").create(SITE, CALENDAR)
    unit = Unit(date(2017, 5, 1), "x01y01")
    want = unit_ds(SITE.tile(unit.tile_id), unit.month)
    store.write_unit(unit, want, {})
    names = ["last_red", "last_age", "ndvi"]
    got = store.read_unit(unit, names)
    assert list(got.data_vars) == names
    for name in names:
        np.testing.assert_array_equal(got[name].values, want[name].values)
    with pytest.raises(StoreError, match="no monthly variable nope"):
        store.read_unit(unit, ["nope", "ndvi"])
