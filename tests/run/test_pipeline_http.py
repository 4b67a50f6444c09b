"""The pipeline reading its scenes over HTTP from the cloud stand-in, as in the cloud:
with 5 % of requests answered 503 and 1 % of connections dropped, the store is
bit-identical to a clean run from local disk, and no unit is left half-written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from nampo.io.scenes import NormalisedItem, normalise
from nampo.io.store import Store
from nampo.products.variables import ALL
from nampo.run.execute import execute, process
from nampo.run.plan import CatalogSpec, find_scenes, plan_run
from nampo.services.assets import AssetServer, Faults
from nampo.services.assets.archive import served_items
from nampo.sites import Site

pytestmark = pytest.mark.services

MONTH = dt.date(2022, 1, 1)
CLOUD_FAULTS = Faults(error_share=0.05, drop_share=0.01, seed=17)


@pytest.fixture(scope="module")
def site(mini_archive) -> Site:
    return Site.from_scenario(mini_archive.scenario, tile_px=64, baseline_months=3)


@pytest.fixture(scope="module")
def spec(loaded_stac_api) -> CatalogSpec:
    return CatalogSpec("local", loaded_stac_api.url)


def over_http(scenes: list[NormalisedItem], root: Path, server: AssetServer) -> list:
    return [normalise(i) for i in served_items([s.stac for s in scenes], root, server.url_of)]


def values(store: Store) -> dict[str, np.ndarray]:
    ds = store.open()
    out = {}
    for v in ALL:
        a = ds[v.name]
        out[v.name] = (a.sel(time=np.datetime64(MONTH, "ns")) if "time" in a.dims else a).values
    return out


def test_a_store_read_through_faults_is_the_clean_store(mini_archive, site, spec, tmp_path):
    clean = Store(tmp_path / "clean.zarr")
    report = process(site, MONTH, MONTH, store=clean, spec=spec)
    assert not report.failed, report.failed

    scenes = find_scenes(site, MONTH, MONTH, spec)
    with AssetServer(mini_archive.path, CLOUD_FAULTS) as server:
        remote = over_http(scenes, mini_archive.path, server)
        assert all(b.href.startswith(server.url) for s in remote for b in s.bands.values())
        faulty = Store(tmp_path / "faulty.zarr")
        plan = plan_run(site, MONTH, MONTH, store=faulty, spec=spec, scenes=remote)
        report = execute(plan)
        traffic = server.traffic()
    assert not report.failed, report.failed
    assert report.count("done") == 2 * len(site.tiles)  # baselines and the month
    assert traffic.statuses.get(503, 0) > 0 and traffic.statuses.get(0, 0) > 0
    assert all(not r.skipped_scenes for r in report.results)

    got, want = values(faulty), values(clean)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert np.array_equal(got[name], want[name], equal_nan=True), name
    # The records name the same scenes (none skipped), whatever the faults.
    for unit in [f"{t.id}/{MONTH:%Y-%m}" for t in site.tiles]:
        a, b = faulty.record(unit), clean.record(unit)
        assert a["scenes"] == b["scenes"] and a["skipped_scenes"] == b["skipped_scenes"] == {}
