"""The pipeline end to end on the rendered mini archive through the real local STAC API:
stores on local disk and on S3 (moto on loopback), on a real multi-process Dask cluster,
idempotent, resumable after SIGKILL, and refusing bad input before writing anything."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from pyproj import CRS

from nampo.errors import CatalogError, NampoError
from nampo.grid import Grid
from nampo.io.cube import Reading
from nampo.io.scenes import normalise
from nampo.io.store import Store, StoreLocation
from nampo.products.variables import ALL, COMPOSITE_BANDS
from nampo.run.execute import process
from nampo.run.plan import CALENDAR, CatalogSpec, PipelineError, plan_run
from nampo.run.schedule import strips
from nampo.run.units import BaselineUnit, Unit, unit_from_id
from nampo.run.work import run_baseline, run_month
from nampo.sites import Site
from tests.conftest import MINI, make_bucket, s3_settings

pytestmark = pytest.mark.services

FIRST, LAST = dt.date(2021, 12, 1), dt.date(2022, 2, 1)  # across the 04.00 baseline switch
TILE_PX = 64
MASKED_SCL = {0, 1, 3, 8, 9, 10}


def mini_site(archive) -> Site:
    return Site.from_scenario(archive.scenario, tile_px=TILE_PX, baseline_months=3)


@pytest.fixture(scope="module")
def site(mini_archive) -> Site:
    return mini_site(mini_archive)


@pytest.fixture(scope="module")
def spec(loaded_stac_api) -> CatalogSpec:
    return CatalogSpec("local", loaded_stac_api.url)


@pytest.fixture(scope="module")
def reference(site, spec, tmp_path_factory) -> Store:
    """The period processed in this process, into a local store."""
    store = Store(tmp_path_factory.mktemp("ref") / "site.zarr")
    report = process(site, FIRST, LAST, store=store, spec=spec)
    assert not report.failed, report.failed
    assert report.count("done") == len(site.tiles) * 4  # baselines + 3 months
    return store


def arrays(store: Store) -> dict[str, np.ndarray]:
    ds = store.open()
    months = ds["time"].sel(time=slice(str(FIRST), str(LAST)))
    out = {}
    for v in ALL:
        a = ds[v.name]
        if "time" in a.dims:
            a = a.sel(time=months)
        out[v.name] = a.values
    return out


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name], equal_nan=True), name


def test_two_worker_processes_on_s3_give_the_same_store(
    reference, site, spec, s3_server, dask_client
):
    make_bucket(s3_server, "products")
    loc = StoreLocation.from_settings("s3://products/mini.zarr", s3_settings(s3_server))
    store = Store(loc)
    report = process(site, FIRST, LAST, store=store, spec=spec, client=dask_client)
    assert not report.failed, report.failed
    assert len(dask_client.scheduler_info()["workers"]) == 2

    # Plain xarray opens it, with its CRS and the site's pixel centres.
    ds = xr.open_zarr(loc.url, storage_options=dict(loc.storage_options), consolidated=False)
    assert {v.name for v in ALL} <= set(ds.data_vars)
    assert CRS.from_wkt(ds["spatial_ref"].attrs["crs_wkt"]).to_epsg() == 32651
    x, y = site.grid.xy_coords()
    assert np.allclose(ds["x"], x) and np.allclose(ds["y"], y)
    # Stored as float32 and uint8; plain xarray masks the uint8 fill value (0: no data).
    assert ds["red"].dtype == np.float32 and ds["landcover"].encoding["dtype"] == np.uint8
    # Bit-identical to the single-process run.
    assert_same(arrays(store), arrays(reference))


def _pixel_values(item: dict, band: str, x: float, y: float) -> float | None:
    asset = item["assets"][band]
    with rasterio.open(asset["href"]) as src:
        row, col = src.index(x, y)
        if not (0 <= row < src.height and 0 <= col < src.width):
            return None
        return float(src.read(1, window=((row, row + 1), (col, col + 1)))[0, 0])


def test_composite_agrees_with_numpy_on_the_cogs(reference, mini_archive, site):
    """The stored median equals a plain computation from the COGs for sample pixels:
    per datatake the first tile that has the pixel, clear by SCL, scaled by the item's
    own raster:bands, then the median over the month."""
    items = [json.loads(x) for x in (mini_archive.path / "items.ndjson").read_text().splitlines()]
    ds = reference.open()
    month = dt.date(2022, 1, 1)  # both baselines: offsets before and after 2022-01-25
    in_month = [it for it in items if it["properties"]["datetime"].startswith("2022-01")]
    assert {it["properties"]["s2:processing_baseline"] >= "04.00" for it in in_month} == {
        True,
        False,
    }
    x, y = site.grid.xy_coords()
    checked = 0
    for row, col in [(5, 5), (30, 60), (60, 62), (90, 100), (110, 20), (64, 64)]:
        per_day: dict[str, list[float]] = {}
        for it in sorted(in_month, key=lambda i: (i["properties"]["datetime"], i["id"])):
            day = it["properties"]["datetime"][:10]
            if day in per_day:
                continue  # the same datatake from the other tile: first one wins
            scl = _pixel_values(it, "scl", x[col], y[row])
            if scl is None or scl == 0:
                continue
            values = []
            for band in COMPOSITE_BANDS:
                dn = _pixel_values(it, band, x[col], y[row])
                rb = it["assets"][band]["raster:bands"][0]
                values.append(np.float32(dn * rb["scale"] + rb["offset"]) if dn else np.nan)
            if scl in MASKED_SCL or np.isnan(values).any():
                per_day[day] = None
            else:
                per_day[day] = values
        clear = np.array([v for v in per_day.values() if v is not None], "f4")
        stored = ds.sel(time=np.datetime64(month, "ns")).isel(y=row, x=col)
        assert int(stored["clear_count"]) == len(clear)
        if len(clear):
            expected = np.median(clear, axis=0)
            got = np.array([float(stored[b]) for b in COMPOSITE_BANDS])
            assert np.allclose(got, expected, rtol=1e-6, atol=1e-7), (row, col, got, expected)
            checked += 1
    assert checked >= 4


def test_rerun_skips_every_unit_and_changes_nothing(reference, site, spec):
    before = arrays(reference)
    records = {u: reference.record(u) for u in sorted(reference.done())}
    report = process(site, FIRST, LAST, store=reference, spec=spec)
    assert report.count("skipped") == len(report.results) and not report.failed
    assert_same(arrays(reference), before)
    assert {u: reference.record(u) for u in sorted(reference.done())} == records


KILLABLE = """
import datetime as dt, sys
from pathlib import Path
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.scenario.model import load_scenario
from nampo.sites import Site
from nampo.io.store import Store
site = Site.from_scenario(load_scenario(sys.argv[1]), tile_px={tile}, baseline_months=3)
process(site, dt.date(2021, 12, 1), dt.date(2022, 2, 1), store=Store(sys.argv[3]),
        spec=CatalogSpec("local", sys.argv[2]))
"""


def test_a_killed_run_resumes_to_the_same_store(reference, site, spec, tmp_path):
    path = tmp_path / "killed.zarr"
    store = Store(path)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE.format(tile=TILE_PX), str(MINI), spec.url, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists() and len(store.done()) >= len(site.tiles) + 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = store.done()
    total = len(site.tiles) * 4
    assert len(site.tiles) + 2 <= len(done_before) < total

    report = process(site, FIRST, LAST, store=store, spec=spec)
    assert not report.failed
    assert {r.unit_id for r in report.results if r.status == "skipped"} == done_before
    assert report.count("done") == total - len(done_before)
    assert_same(arrays(store), arrays(reference))


def test_bad_input_is_refused_before_anything_is_written(site, spec, tmp_path, s3_server):
    path = tmp_path / "never.zarr"
    with pytest.raises(CatalogError, match="unknown catalog 'nope'"):
        process(site, FIRST, LAST, store=Store(path), spec=CatalogSpec("nope", spec.url))
    with pytest.raises(PipelineError, match="ends .* before it starts"):
        process(site, LAST, FIRST, store=Store(path), spec=spec)
    far = Site(
        "nowhere",
        "Far from the archive",
        Grid(32651, 10, 300000, 4000020, 120, 120),
        TILE_PX,
        site.baseline,
    )
    with pytest.raises(PipelineError, match="no scenes of site 'nowhere'"):
        process(far, FIRST, LAST, store=Store(path), spec=spec)
    assert not path.exists()

    missing_bucket = StoreLocation.from_settings(
        "s3://no-such-bucket/x.zarr", s3_settings(s3_server)
    )
    with pytest.raises(NampoError, match="no-such-bucket"):
        process(site, FIRST, LAST, store=Store(missing_bucket), spec=spec)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(NampoError, match="a-file"):
        process(site, FIRST, LAST, store=Store(blocker / "site.zarr"), spec=spec)


def test_a_corrupt_asset_is_skipped_and_recorded(reference, mini_archive, site, tmp_path):
    """One scene whose red band is truncated: the unit completes without it and its record
    names it; the other scenes are used."""
    items = [json.loads(x) for x in (mini_archive.path / "items.ndjson").read_text().splitlines()]
    in_month = [it for it in items if it["properties"]["datetime"].startswith("2022-01")]
    victim = next(it for it in in_month if "51SYC" in it["id"])
    href = Path(victim["assets"]["red"]["href"])
    broken = tmp_path / href.name
    shutil.copyfile(href, broken)
    with open(broken, "r+b") as f:
        f.truncate(broken.stat().st_size // 3)
    victim = json.loads(json.dumps(victim))
    victim["assets"]["red"]["href"] = str(broken)
    scenes = [normalise(victim if it["id"] == victim["id"] else it) for it in items]

    store = Store(tmp_path / "corrupt.zarr")
    store.create(site, CALENDAR)
    tile = site.tiles[0]
    base = run_baseline(site, BaselineUnit(tile.id), scenes, store.location, Reading(), "t")
    assert base.status == "done"
    with pytest.warns(Warning, match=victim["id"]):
        result = run_month(
            site, Unit(dt.date(2022, 1, 1), tile.id), scenes, store.location, Reading(), "t"
        )
    assert result.status == "done"
    assert victim["id"] in result.skipped_scenes
    record = store.record(f"{tile.id}/2022-01")
    assert victim["id"] in record["skipped_scenes"]
    assert victim["id"] not in record["scenes"] and record["scenes"]


def test_the_plan_starts_with_the_largest_tiles(site, spec, tmp_path):
    """Units start in submission order, so the small edge tiles go last and fill the gaps."""
    pixels = {t.id: t.shape[0] * t.shape[1] for t in site.tiles}
    assert len(set(pixels.values())) > 1, "the test needs a site with edge tiles"
    plan = plan_run(site, FIRST, LAST, store=Store(tmp_path / "s.zarr"), spec=spec)
    sizes = [pixels[b.tile_id] for b in plan.baselines]
    assert sorted(b.tile_id for b in plan.baselines) == sorted(pixels)
    assert sizes == sorted(sizes, reverse=True)
    assert [u.month for u in plan.months] == sorted(u.month for u in plan.months)
    for month in {u.month for u in plan.months}:
        sizes = [pixels[u.tile_id] for u in plan.months if u.month == month]
        assert sizes == sorted(sizes, reverse=True) and len(sizes) == len(pixels)


def test_on_a_cluster_each_worker_goes_through_its_strip_month_by_month(
    site, spec, dask_client, tmp_path
):
    """The library's executor submits one month a task, a tile's next month when its month
    before has ended, each tile's to its strip's worker: each worker then runs all its
    strip's tiles of a month before the next month (Dask starts a worker's ready tasks in
    submission order), so that a month's files are opened and read ahead once per worker
    (docs/run.md). With 12-month chains a worker ran every month of one tile, then every
    month of the next."""
    from distributed import get_task_stream

    store = Store(tmp_path / "strips.zarr")
    with get_task_stream(dask_client) as stream:
        report = process(site, FIRST, LAST, store=store, spec=spec, client=dask_client)
    assert not report.failed, report.failed
    workers = sorted(dask_client.scheduler_info()["workers"])
    own = {t: w for s, w in zip(strips(site, len(workers)), workers, strict=True) for t in s.tiles}
    assert len(set(own.values())) == 2
    suffix = f"-{report.run_id}"
    ran: list[tuple[float, str, Unit]] = []  # (start, worker, unit) of each month task
    for task in stream.data:
        name = str(task["key"])
        if not name.endswith(suffix) or name.endswith(f"baseline{suffix}"):
            continue
        unit = unit_from_id(name.removesuffix(suffix))  # one unit a task, not a chain
        assert isinstance(unit, Unit)
        start = min(s["start"] for s in task["startstops"] if s["action"] == "compute")
        ran.append((start, task["worker"], unit))
    assert sorted(u.id for _, _, u in ran) == sorted(
        f"{t.id}/{m}" for t in site.tiles for m in ("2021-12", "2022-01", "2022-02")
    )
    for worker in workers:
        # its own strip's months, in the order it ran them (a tile taken from the other
        # worker's strip when it had nothing else to do is left aside)
        mine = [u.month for _, w, u in sorted(ran) if w == worker and own[u.tile_id] == worker]
        assert mine and mine == sorted(mine), worker
