"""Ships one by one and coal cleared (issue 18), end to end on the ``pier-mini`` scenario: a
pier with three berths end to end (ships 15-25 m apart bow to stern, at a slant to the
pixel grid), a dock with three berths side by side (15-25 m apart), and coal cleared from
a yard down to its paved pad. Rendered, served by a local STAC API, processed into a
store and scored with ``nampo score``, as a user would."""

from __future__ import annotations

import csv
import json

import pytest

from nampo import cli
from nampo.io.store import Store
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec
from nampo.scenario.archive import build_archive
from nampo.scenario.known_sites import known_site, load_site
from nampo.scenario.model import EventType, load_scenario
from nampo.services import pgstac

VESSEL_MAE = 0.3
"""Issue 18's target: vessel MAE per facility per clear scene."""


def test_the_scenario_moors_ships_15_to_25_m_apart():
    """From the scenario file alone: three berths per facility, ships that fill them to
    within 15-25 m of the next ship (bow to stern at the pier, side by side in the dock)."""
    sc = load_scenario(known_site("pier-mini").scenario)
    berths = {f.name: len(f.berths) for f in sc.facilities if f.berths}
    assert berths == {"pier": 3, "dock": 3}
    visits = {e.facility: e for e in sc.events if e.type == EventType.vessel_visits}
    pier = visits["pier"].ships
    assert pier.along == (0.5, 0.5)  # centred in 160 m berths end to end
    assert 15 <= 160 - pier.length_m[1] and 160 - pier.length_m[0] <= 25
    dock = visits["dock"].ships
    assert 15 <= 50 - dock.beam_m[1] and 50 - dock.beam_m[0] <= 25  # 50 m wide, side by side
    assert any(e.type == EventType.coal_removed for e in sc.events)


@pytest.fixture(scope="module")
def pier_mini(archives_root, stac_home, tmp_path_factory):
    """(archive, store) of pier-mini: every month of its period processed."""
    state_dir = stac_home / "stac-pier-mini"
    try:
        api = pgstac.start(state_dir)
        archive = build_archive(known_site("pier-mini").scenario, archives_root, workers=2)
        pgstac.load(api, archive.path)
        store = Store(tmp_path_factory.mktemp("pier-mini") / "pier-mini.zarr")
        period = archive.scenario.period
        report = process(
            load_site("pier-mini"),
            period.start,
            period.end,
            store=store,
            spec=CatalogSpec("local", api.url),
        )
        assert not report.failed, report.failed
        yield archive, store
    finally:
        pgstac.stop(state_dir)


def nampo_score(pier_mini, capsys) -> dict:
    archive, store = pier_mini
    args = ["score", "--archive", str(archive.path), "--store", str(store.url), "--json"]
    assert cli.main(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.services
def test_ships_moored_close_together_are_counted_one_by_one(pier_mini, capsys):
    archive, _ = pier_mini
    rows = {r["facility"]: r for r in nampo_score(pier_mini, capsys)["activity"]["vessels"]}
    with open(archive.path / "truth" / "scenes.csv", newline="") as f:
        truth = list(csv.DictReader(f))
    for name in ("pier", "dock"):  # three ships at once, 15-25 m apart, were drawn
        assert any(r[f"vessels_{name}"] == "3" for r in truth), name
    for name in ("pier", "dock"):
        r = rows[name]
        assert r["scenes"] >= 15, rows  # a mostly clear sky: most scenes count
        assert r["truth_mean"] > 1, rows  # often two or three ships side by side
        assert r["mean_abs_error"] <= VESSEL_MAE, rows


@pytest.mark.services
def test_coal_cleared_from_the_yard_is_found_as_coal_removed(pier_mini, capsys):
    result = nampo_score(pier_mini, capsys)
    rows = {r["type"]: r for r in result["rows"]}
    assert rows["coal_removed"]["truth"] == 1 and rows["coal_removed"]["recall"] == 1, rows
    assert rows["overall"]["type_agreement"] == 1, rows
    assert rows["overall"]["precision"] >= 0.9, rows
