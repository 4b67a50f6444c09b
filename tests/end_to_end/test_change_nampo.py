"""Issue 5's targets on the full Nampo scenario, computed with `nampo score` from the truth
files: the whole archive processed into a store (about 3 minutes on 2 quiet cores), then
events dated and scored."""

from __future__ import annotations

import json
import os

import pytest

from nampo import cli
from nampo.io.store import Store
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.run.units import month_start
from nampo.scenario.known_sites import load_site
from nampo.services import pgstac
from tests.end_to_end.test_change_truth import TARGETS

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    # The whole archive through the pipeline takes longer than the suite's budget: run it
    # on purpose (NAMPO_FULL=1), e.g. before resolving the change-detection issue.
    pytest.mark.skipif(
        not os.environ.get("NAMPO_FULL"),
        reason="processes the whole Nampo archive (about 3 min on 2 cores): set NAMPO_FULL=1",
    ),
]


@pytest.fixture(scope="module")
def nampo_store(nampo_archive, nampo_stac_api, tmp_path_factory, dask_client) -> Store:  # noqa: F811
    pgstac.load(nampo_stac_api, nampo_archive.path)
    period = nampo_archive.scenario.period
    store = Store(tmp_path_factory.mktemp("nampo-change") / "nampo.zarr")
    report = process(
        load_site("nampo"),
        month_start(period.start),
        month_start(period.end),
        store=store,
        spec=CatalogSpec("local", nampo_stac_api.url),
        client=dask_client,
    )
    assert not report.failed, report.failed
    return store


@pytest.mark.timeout(3600)
def test_nampo_events_meet_the_targets(nampo_store, nampo_archive, capsys):
    args = ["score", "--archive", str(nampo_archive.path), "--store", str(nampo_store.url)]
    assert cli.main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    overall = result["rows"][0]
    assert overall["truth"] >= 10, result  # every land-cover event of 2,000 m2 or more
    assert overall["recall"] >= TARGETS["recall"], result
    assert overall["precision"] >= TARGETS["precision"], result
    assert overall["median_timing_error_days"] <= TARGETS["timing_days"], result
    assert overall["median_area_error_pct"] <= TARGETS["area_pct"], result
    assert overall["type_agreement"] >= 0.9, result
    # the fourth crane (10 m x 8 m) is not claimed
    assert result["subpixel_claims"] == [], result
    # vessels counted per facility per clear scene (nampo.analysis.activity),
    # against truth/scenes.csv
    vessels = result["activity"]["vessels"]
    overall_v = vessels[0]
    assert overall_v["facility"] == "overall" and overall_v["scenes"] >= 100, vessels
    assert overall_v["mean_abs_error"] <= TARGETS["vessel_mae"], vessels
    assert {v["facility"] for v in vessels[1:]} == {
        "oil_terminal",
        "container_terminal",
        "cargo_terminal",
        "coal_yard",
    }, vessels
    for v in vessels[1:]:
        assert v["mean_abs_error"] <= 2 * TARGETS["vessel_mae"], v
    assert result["activity"]["ice"]["mean_abs_error"] <= 0.1, result["activity"]
