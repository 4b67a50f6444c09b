"""The scenario format: valid files load, invalid ones fail with one line naming the field."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from nampo.errors import ScenarioError
from nampo.scenario.model import EventType, load_scenario, parse_scenario
from nampo.scenario.schedule import datatakes
from tests.conftest import MINI, NAMPO


def _nampo_data() -> dict:
    """The Nampo scenario as plain data, its site's definition inlined."""
    data = yaml.safe_load(NAMPO.read_text())
    data["site"] = yaml.safe_load((NAMPO.parent / data["site"]).read_text())
    return data


def _error(data: dict) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "x.yaml")
    msg = str(info.value)
    assert "\n" not in msg, "errors are one line"
    return msg


def test_shipped_scenarios_are_valid():
    for path in (NAMPO, MINI):
        sc = load_scenario(path)
        assert sc.events and sc.facilities


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d["site"].pop("grid"), r"^x\.yaml: site: outline: required"),
        (lambda d: d["site"]["grid"].update(crs="EPSG:4326"), r"site: grid\.crs: .*UTM"),
        (
            lambda d: d["site"]["grid"].update(origin=[703025, 4293040]),
            r"site: grid\.origin: .*multiples of 20",
        ),
        (lambda d: d.update(grid={}), r"grid: a scenario that refers to a site takes these"),
        (lambda d: d["period"].update(end="2015-01-01"), r"period: .*end 2015-01-01 is not after"),
        (
            lambda d: d["events"][0].update(end="2016-01-01"),
            r"events\[0\]: .*end 2016-01-01 is before start 2016-03-01",
        ),
        (lambda d: d["events"][0].update(type="earthquake"), r"events\[0\]\.type: Input should be"),
        (
            lambda d: d["events"][0].update(facility="moon_base"),
            r"events\[0\] \(smeltery_drainage\)\.facility: unknown facility 'moon_base'",
        ),
        (
            lambda d: d["landcover"]["areas"][0].update({"class": "lava"}),
            r"landcover\.areas\[0\]\.class",
        ),
        (
            lambda d: d["landcover"]["areas"][1]["class"]["classes"].update(roof=0.9),
            r"shares must add up to 1",
        ),
        (
            lambda d: d["events"][1]["polygons"][0].__setitem__(0, [125.2, 38.7]),
            r"events\[1\] \(smeltery_complex\)\.polygons\[0\] leaves the grid",
        ),
        (
            lambda d: d["events"][1]["polygons"][0].__setitem__(0, [38.7, 125.2]),
            r"is not a \[lon, lat\] pair",
        ),
        (lambda d: d.update(colour="red"), r"colour: Extra inputs are not permitted"),
        (
            lambda d: d["acquisitions"]["platforms"][1].update(first="2016-01-01"),
            r"platforms\[1\]: .*before sentinel-2b's launch \(2017-03-07\)",
        ),
        (
            lambda d: d["events"][17]["ice"].update(peak="13-45"),
            r"events\[17\]\.ice\.peak: .*'13-45' is not a month-day",
        ),
        (
            lambda d: d["acquisitions"]["tiles"][0].update(code="52SBH"),
            r"acquisitions\.tiles\[0\] \(52SBH\): tile of UTM zone 52 on a grid in zone 51",
        ),
        (
            lambda d: d["acquisitions"]["tiles"][1].update(x_origin=480000),
            r"acquisitions\.tiles\[1\] \(51SXC\): does not overlap the grid",
        ),
        (lambda d: d["events"][1].update(via="ice"), r"`via` cannot be ice"),
        (lambda d: d["climate"].update(cloud_height_m=[2000, 500]), r"climate\.cloud_height_m"),
        (
            lambda d: d["events"][12].update(berths=[7]),
            r"events\[12\] \(oil_ships_before_2018\)\.berths: 7 is not a berth of 'oil_terminal'",
        ),
    ],
)
def test_invalid_scenarios_name_the_field(edit, pattern):
    data = _nampo_data()
    edit(data)
    assert re.search(pattern, _error(data)), _error(data)


def test_a_scenario_takes_its_site_from_the_definition_it_names(tmp_path: Path):
    sc = load_scenario(MINI)
    site = sc.site_definition
    assert site is not None and site.name == sc.name == "harbour-mini"
    assert sc.site_grid == site.site_grid()
    assert [f.name for f in sc.facilities] == [f.name for f in site.facilities]
    # what the site says beyond what is rendered (its baseline) leaves the archive alone
    data = yaml.safe_load(MINI.read_text())
    data["site"] = yaml.safe_load((MINI.parent / data["site"]).read_text())
    data["site"]["baseline"]["last"] = "2021-12"
    assert parse_scenario(data).fingerprint() == sc.fingerprint()
    data["site"]["facilities"][0]["polygon"][0] = [125.4063, 38.7186]
    assert parse_scenario(data).fingerprint() != sc.fingerprint()
    missing = tmp_path / "s.yaml"
    missing.write_text(MINI.read_text())
    with pytest.raises(ScenarioError, match=r"s\.yaml: site: .*cannot read the site definition"):
        load_scenario(missing)


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngrid: [1, 2\nperiod: {}\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: line \d+: not valid YAML"):
        load_scenario(bad)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.yaml")


def test_fingerprint_follows_content_not_formatting(tmp_path: Path):
    data = _nampo_data()
    reformatted = tmp_path / "n.yaml"
    reformatted.write_text("# a comment\n" + yaml.safe_dump(data, sort_keys=True))
    assert load_scenario(reformatted).fingerprint() == load_scenario(NAMPO).fingerprint()
    data["seed"] += 1
    assert parse_scenario(data).fingerprint() != load_scenario(NAMPO).fingerprint()


# The brief's table (shared BRIEF.md): row -> (event types that render it, earliest start,
# latest end). The scenario must place every row inside its reported window.
BRIEF_ROWS = {
    1: ({"drainage", "construction"}, "2016-01-01", "2017-12-31"),
    2: ({"construction"}, "2017-05-01", "2017-09-30"),
    3: ({"construction"}, "2017-05-01", "2017-10-31"),
    4: ({"reclamation", "storage"}, "2016-01-01", "2018-03-31"),
    5: ({"construction", "reclamation"}, "2016-01-01", "2016-12-31"),
    6: ({"construction"}, "2017-02-01", "2017-03-31"),
    7: ({"coal_cover"}, "2017-11-15", "2018-02-28"),
    8: ({"pier", "new_tank"}, "2017-01-01", "2018-03-31"),
    9: ({"vessel_visits"}, "2015-07-01", "2018-06-30"),
    10: ({"seasonal_ice"}, "2015-07-01", "2018-06-30"),
    11: ({"equipment"}, "2016-01-01", "2016-12-31"),
}


def test_nampo_scenario_tells_the_brief():
    sc = load_scenario(NAMPO)
    assert sc.period.start <= dt.date(2015, 7, 1) and sc.period.end >= dt.date(2018, 6, 30)
    for row, (types, first, last) in BRIEF_ROWS.items():
        events = [e for e in sc.events if e.brief == row]
        assert events, f"brief row {row} has no event"
        for e in events:
            assert e.type.value in types, (row, e.id)
            assert dt.date.fromisoformat(first) <= e.start, (row, e.id, e.start)
            assert e.end <= dt.date.fromisoformat(last), (row, e.id, e.end)
    # Row 2: four buildings of about 22,500 m² in all.
    complex_ = next(e for e in sc.events if e.brief == 2)
    assert len(complex_.polygons) == 4
    # Row 9: ships at all three oil piers from January 2018.
    busy = [e for e in sc.events if e.brief == 9 and e.start >= dt.date(2018, 1, 1)]
    assert busy and set(busy[0].berths) == {0, 1, 2}
    # Row 11: the fourth crane is smaller than one 10 m pixel.
    crane = next(e for e in sc.events if e.type == EventType.equipment)
    from nampo.scenario.layout import event_geometry

    assert event_geometry(crane, sc.site_grid).area < 100 * 2


def test_acquisitions_follow_the_constellation():
    sc = load_scenario(NAMPO)
    takes = datatakes(sc)
    before_2b = [t for t in takes if t.date < dt.date(2017, 7, 1)]
    after_2b = [t for t in takes if t.date >= dt.date(2017, 8, 1)]
    gaps_before = {(b.date - a.date).days for a, b in zip(before_2b, before_2b[1:], strict=False)}
    gaps_after = {(b.date - a.date).days for a, b in zip(after_2b, after_2b[1:], strict=False)}
    assert gaps_before == {10} and gaps_after == {5}
    assert {t.platform for t in before_2b} == {"sentinel-2a"}
    assert min(t.date for t in takes) < dt.date(2015, 7, 15)
    # Sun: high in June, low in December at 38.7 N around 10:30 local solar time.
    june = [t.sun_elevation for t in takes if t.date.month == 6]
    dec = [t.sun_elevation for t in takes if t.date.month == 12]
    assert min(june) > 65 and max(dec) < 32
