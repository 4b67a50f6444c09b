"""Product versions: every completion record says which version of the product wrote it;
units of an older version are reported stale (`nampo store status`), recomputed exactly
(or left, by policy), and an upgrade killed halfway leaves every unit at its old complete
version or its new one, never neither; resumed, the store equals one computed fresh."""

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

from nampo.cli import main
from nampo.io.store import Store
from nampo.io.store.records import record_key
from nampo.products.variables import ALL
from nampo.products.version import PRODUCT_VERSION, record_version
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec, plan_run
from nampo.run.units import BaselineUnit, Unit
from nampo.sites import Site
from tests.conftest import MINI

FIRST, LAST = dt.date(2021, 12, 1), dt.date(2022, 1, 1)
TILE_PX = 64


@pytest.fixture(scope="module")
def site(mini_archive) -> Site:
    return Site.from_scenario(mini_archive.scenario, tile_px=TILE_PX, baseline_months=3)


@pytest.fixture(scope="module")
def spec(loaded_stac_api) -> CatalogSpec:
    return CatalogSpec("local", loaded_stac_api.url)


@pytest.fixture(scope="module")
def fresh(site, spec, tmp_path_factory) -> Store:
    """The period computed fresh by this product version."""
    store = Store(tmp_path_factory.mktemp("fresh") / "site.zarr")
    report = process(site, FIRST, LAST, store=store, spec=spec)
    assert not report.failed and report.count("done") == len(site.tiles) * 3
    return store


def arrays(store: Store) -> dict[str, np.ndarray]:
    ds = store.open()
    out = {}
    for v in ALL:
        a = ds[v.name]
        if "time" in a.dims:
            a = a.sel(time=slice(str(FIRST), str(LAST)))
        out[v.name] = a.values
    return out


def assert_same(a: dict, b: dict) -> None:
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def copy_of(store: Store, path: Path) -> Store:
    shutil.copytree(store.location.url, path)
    return Store(path)


def write_older(store: Store, unit_ids) -> None:
    """Make units look as if an older product version wrote them (version 0: no field)."""
    for uid in unit_ids:
        path = Path(store.location.url) / record_key(uid)
        doc = json.loads(path.read_text())
        doc.pop("product_version", None)
        path.write_text(json.dumps(doc))


def test_records_carry_the_product_version(fresh):
    records = fresh.records()
    assert records and {record_version(r) for r in records.values()} == {PRODUCT_VERSION}


def test_stale_units_are_reported_then_exactly_they_are_recomputed(
    fresh, site, spec, tmp_path, capsys
):
    store = copy_of(fresh, tmp_path / "old.zarr")
    tiles = [t.id for t in site.tiles]
    older = {Unit(FIRST, tiles[0]).id, Unit(LAST, tiles[1]).id, BaselineUnit(tiles[2]).id}
    write_older(store, older)

    assert main(["store", "status", store.url, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["stale"], status["missing"]) == (3, 0)
    assert status["complete"] == len(tiles) * 3 - 3
    assert status["versions"] == {"0": 3, str(PRODUCT_VERSION): len(tiles) * 3 - 3}
    assert status["months"][f"{FIRST:%Y-%m}"][tiles[0]] == "stale"
    assert status["baselines"][tiles[2]] == "stale"
    assert main(["store", "status", store.url]) == 0
    assert "total: 9 complete, 3 stale, 0 missing" in capsys.readouterr().out

    left = plan_run(site, FIRST, LAST, store=store, spec=spec, stale="leave")
    assert set(left.stale) == older and not left.baselines and not left.months
    report = process(site, FIRST, LAST, store=store, spec=spec)
    assert {r.unit_id for r in report.results if r.status == "done"} == older
    assert not report.failed
    assert {record_version(r) for r in store.records().values()} == {PRODUCT_VERSION}
    run = store.runs()[report.run_id]
    assert set(run["stale"]["units"]) == older and run["stale"]["policy"] == "recompute"
    assert_same(arrays(store), arrays(fresh))


UPGRADE = """
import datetime as dt, sys
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.scenario.model import load_scenario
from nampo.sites import Site
from nampo.io.store import Store
site = Site.from_scenario(load_scenario(sys.argv[1]), tile_px={tile}, baseline_months=3)
process(site, dt.date(2021, 12, 1), dt.date(2022, 1, 1), store=Store(sys.argv[3]),
        spec=CatalogSpec("local", sys.argv[2]))
"""


def test_an_upgrade_killed_halfway_leaves_every_unit_at_a_complete_version(
    fresh, site, spec, tmp_path
):
    store = copy_of(fresh, tmp_path / "upgrading.zarr")
    every = fresh.done()
    write_older(store, every)
    proc = subprocess.Popen(
        [sys.executable, "-c", UPGRADE.format(tile=TILE_PX), str(MINI), spec.url, store.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            versions = [record_version(r) for r in store.records().values()]
            if versions.count(PRODUCT_VERSION) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the upgrade ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # never neither: every unit still has a complete record, of the old or the new version
    records = store.records()
    assert set(records) == every
    versions = {u: record_version(r) for u, r in records.items()}
    assert set(versions.values()) == {0, PRODUCT_VERSION}
    upgraded = {u for u, v in versions.items() if v == PRODUCT_VERSION}

    report = process(site, FIRST, LAST, store=store, spec=spec)
    assert not report.failed
    assert {r.unit_id for r in report.results if r.status == "done"} == every - upgraded
    assert_same(arrays(store), arrays(fresh))
