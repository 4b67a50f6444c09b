"""The pipeline reading its scenes over HTTP from the cloud stand-in, as in the cloud:
with 5 % of requests answered 503 and 1 % of connections dropped, or with signed hrefs
whose tokens expire in the middle of the run, the store is bit-identical to a clean run
from local disk, and no unit is left half-written."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nampo.io.catalog import ProfileSigner
from nampo.io.cube import Reading
from nampo.io.cube import stackstac_reader as reader_mod
from nampo.io.scenes import NormalisedItem, normalise
from nampo.io.store import Store
from nampo.products.variables import ALL, COMPOSITE_BANDS
from nampo.run.execute import execute, process
from nampo.run.plan import CatalogSpec, find_scenes, plan_run
from nampo.run.units import Unit, unit_from_id
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


@pytest.fixture(scope="module")
def clean(site, spec, tmp_path_factory) -> Store:
    """The month and its baselines read from local disk."""
    store = Store(tmp_path_factory.mktemp("clean") / "clean.zarr")
    report = process(site, MONTH, MONTH, store=store, spec=spec)
    assert not report.failed, report.failed
    return store


def assert_same_store(got: Store, want: Store, site: Site) -> None:
    a, b = values(got), values(want)
    assert a.keys() == b.keys()
    for name in b:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name], equal_nan=True), name
    # The records name the same scenes (none skipped).
    for unit in [f"{t.id}/{MONTH:%Y-%m}" for t in site.tiles]:
        x, y = got.record(unit), want.record(unit)
        assert x["scenes"] == y["scenes"] and x["skipped_scenes"] == y["skipped_scenes"] == {}


def test_a_store_read_through_faults_is_the_clean_store(mini_archive, site, spec, clean, tmp_path):
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

    assert_same_store(faulty, clean, site)


LIFETIME = 2700.0
"""Seconds a token of the stand-in lasts (Planetary Computer's: about 45 minutes)."""


class ExpiringTokens:
    """Signs hrefs for the signed stand-in, as ``planetary_computer.sign`` would; the first
    time it signs a scene of `month`, the token's lifetime passes before the unit reads
    (the server's clock jumps): a token that expires in the middle of a run."""

    def __init__(self, server: AssetServer, month: dt.date) -> None:
        self.server, self.month = server, month
        self.calls: list[str] = []
        self.expired = False

    def __call__(self, scene: NormalisedItem) -> NormalisedItem:
        self.calls.append(scene.id)
        stac = copy.deepcopy(scene.stac)
        for asset in stac["assets"].values():
            asset["href"] = self.server.sign(asset["href"], LIFETIME)
        if not self.expired and scene.datetime.date().replace(day=1) == self.month:
            self.expired = True
            self.server.clock_offset += LIFETIME + 60
        return normalise(stac)


def test_a_run_whose_tokens_expire_midway_is_the_clean_store(
    mini_archive, site, spec, clean, tmp_path
):
    """Signed hrefs (Planetary Computer's kind) are signed by the units right before they
    read, through the run's plan; the month unit whose tokens expire before its read is
    refused (403), signs its scenes again once, and completes: the store is bit-identical
    to the clean one."""
    scenes = find_scenes(site, MONTH, MONTH, spec)
    reader_mod.OPEN_FILES.clear()  # files are known by URL: none left from other tests
    with AssetServer(mini_archive.path, signed=True) as server:
        # The catalog's hrefs, unsigned (as Planetary Computer's STAC API gives them).
        unsigned = [
            normalise(i)
            for i in served_items(
                [s.stac for s in scenes],
                mini_archive.path,
                lambda p: server.url_of(p).split("?")[0],
            )
        ]
        sign = ExpiringTokens(server, MONTH)
        store = Store(tmp_path / "signed.zarr")
        plan = plan_run(
            site, MONTH, MONTH, store=store, spec=spec, scenes=unsigned,
            reading=Reading(sign=sign),
        )  # fmt: skip
        assert plan.reading.sign is sign
        report = execute(plan)
        traffic = server.traffic()
    reader_mod.OPEN_FILES.clear()
    assert sign.expired
    assert traffic.statuses.get(403, 0) > 0  # expired tokens were refused
    assert traffic.statuses.get(200, 0) > 0 and traffic.statuses.get(206, 0) > 0
    assert not report.failed, report.failed
    assert all(not r.skipped_scenes for r in report.results)
    # Without the signer the units would read unsigned hrefs (403 on every request), and
    # without the second signing the refused unit would skip its scenes.
    assert_same_store(store, clean, site)


def test_a_planetary_computer_plan_ships_its_signer_by_name(site, spec, tmp_path):
    """A run on a catalog whose hrefs need signing carries the profile's signer to the
    units: by name, so that it pickles to Dask workers and each worker signs with its
    own token cache; public catalogs carry none."""
    scenes = find_scenes(site, MONTH, MONTH, spec)
    store = Store(tmp_path / "pc.zarr")
    pc = plan_run(
        site, MONTH, MONTH, store=store, spec=CatalogSpec("planetary-computer"), scenes=scenes
    )
    assert pc.reading.sign == ProfileSigner("planetary-computer")
    assert pickle.loads(pickle.dumps(pc.reading)) == pc.reading
    local = plan_run(site, MONTH, MONTH, store=store, spec=spec, scenes=scenes)
    assert local.reading.sign is None
    # Operator settings travel in the same value; the loader is the plan's.
    mine = Reading(read_threads=4, read_ahead_mib=0)
    odc = plan_run(site, MONTH, MONTH, store=store, spec=spec, scenes=scenes, loader="odc",
                   reading=mine)  # fmt: skip
    assert odc.reading == mine.replace(loader="odc")


def test_a_backfill_over_http_opens_each_file_once_month_by_month(
    mini_archive, site, spec, tmp_path, monkeypatch
):
    """A backfill from remote COGs goes month by month across the site (the library's
    executor runs one month a task): every tile of a month before the next month, so
    each file is opened (a HEAD, its header, the read-ahead of its blocks under the site)
    once for all the site's tiles, even when the open files hold one month of them, as
    a worker's hold about a third of a Nampo backfill year. With 12-month chains a tile's
    months all ran before the next tile's: a file opened for the first tile had been
    pushed out of the open files (and its blocks out of GDAL's cache) by the time the
    next tile reached its month, and was opened and fetched again (docs/benchmarks.md:
    4.5x the blocks needed, 89 requests a unit over Nampo's 24 months)."""
    before, first, last = dt.date(2021, 12, 1), dt.date(2022, 1, 1), dt.date(2022, 3, 1)
    store = Store(tmp_path / "backfill.zarr")
    # The baselines and the month before, from disk: the backfill reads only its months.
    assert not process(site, before, before, store=store, spec=spec).failed
    scenes = find_scenes(site, first, last, spec)
    bands = (*COMPOSITE_BANDS, "scl")
    per_month = Counter(s.datetime.strftime("%Y-%m") for s in scenes if s.datetime.date() >= first)
    assert len(per_month) == 3
    # The open files hold the assets of one month (of every scene in it), not two.
    monkeypatch.setattr(reader_mod.OPEN_FILES, "size", max(per_month.values()) * len(bands))
    opened: Counter[str] = Counter()
    real = reader_mod.open_remote_retried

    def counted(url, fn):
        opened[url] += 1
        return real(url, fn)

    monkeypatch.setattr(reader_mod, "open_remote_retried", counted)
    reader_mod.OPEN_FILES.clear()
    order: list[str] = []
    with AssetServer(mini_archive.path) as server:
        plan = plan_run(
            site, first, last, store=store, spec=spec,
            scenes=over_http(scenes, mini_archive.path, server),
        )  # fmt: skip
        report = execute(plan, progress=lambda r, done, total: order.append(r.unit_id))
        traffic = server.traffic()
    reader_mod.OPEN_FILES.clear()
    assert not report.failed, report.failed
    assert report.count("done") == 3 * len(site.tiles)
    # (the baselines, complete, are reported first, as skipped)
    months = [u.month for u in map(unit_from_id, order) if isinstance(u, Unit)]
    assert len(months) == 3 * len(site.tiles) and months == sorted(months)  # month by month
    assert opened and set(opened.values()) == {1}, opened.most_common(3)
    assert traffic.heads == traffic.files == len(opened)
