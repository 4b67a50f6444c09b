"""Site definitions: the repository's sites validate, bad definitions are refused with one
line naming the field, the climate rule, and the grid of an outline equal to the one
`nampo process --outline` derives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nampo.cli import main
from nampo.scenario.known_sites import BUILTIN_SITES, KNOWN_SITES
from nampo.scenario.model import load_scenario
from nampo.sites import MAX_SITE_PX, Site, SiteError, derived_climate, parse_definition
from nampo.sites.geojson import definition_from_geojson
from nampo.sites.registry import load_definition

REPO = Path(__file__).resolve().parents[2]

# A quay-side rectangle at Nampo (lon/lat) and two facilities on it, as GIS files give them.
OUTLINE = {
    "type": "Feature",
    "properties": {"name": "east quay"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[125.38, 38.72], [125.40, 38.72], [125.40, 38.735], [125.38, 38.735], [125.38, 38.72]]
        ],
    },
}


def _poly(w, s, e, n):
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


FACILITIES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "quay", "title": "East quay", "kind": "quay"},
            "geometry": _poly(125.385, 38.722, 125.395, 38.727),
        },
        {
            "type": "Feature",
            "properties": {"kind": "berth", "facility": "quay"},
            "geometry": _poly(125.386, 38.7222, 125.394, 38.7227),
        },
        {
            "type": "Feature",
            "properties": {"name": "coal", "kind": "coal_yard"},
            "geometry": _poly(125.381, 38.728, 125.389, 38.733),
        },
    ],
}


def test_every_site_of_the_repository_validates_and_its_scenario_refers_to_it():
    files = sorted(BUILTIN_SITES.glob("*.yaml"))
    assert {f.stem for f in files} == set(KNOWN_SITES) >= {"nampo", "harbour-mini"}
    for path in files:
        definition = load_definition(path)
        assert definition.name == path.stem
        scenario = load_scenario(KNOWN_SITES[path.stem].scenario)
        assert scenario.site_grid == definition.site_grid()
        assert [f.name for f in scenario.facilities] == [f.name for f in definition.facilities]
        assert main(["site", "validate", str(path)]) == 0


def test_a_site_from_geojson_has_the_grid_of_process_outline():
    definition = definition_from_geojson(
        "east-quay", OUTLINE, baseline=("2016-11", "2017-10"), facilities=FACILITIES
    )
    site = definition.to_site()
    outline_site = Site.from_outline("east-quay", OUTLINE, baseline=site.baseline)
    assert site.grid == outline_site.grid
    assert site.grid.x0 % 60 == 0 and site.grid.y0 % 60 == 0
    assert [n for n, _, _ in site.facilities] == ["quay", "coal"]
    assert site.kind("quay") == "quay" and site.kind("coal") == "coal_yard"
    assert dict(site.berths)["quay"][0].bounds[0] == pytest.approx(125.386)
    # registered, the grid is written out; read back, it is the same site
    again = parse_definition(yaml.safe_load(yaml.safe_dump(definition.pinned().to_document())))
    assert again.grid is not None and again.to_site() == site


@pytest.mark.parametrize(
    ("lat", "ice", "growing"),
    [
        (38.7, (12, 1, 2, 3), (5, 6, 7, 8, 9)),
        (-38.7, (6, 7, 8, 9), (11, 12, 1, 2, 3)),
        (1.3, (), tuple(range(1, 13))),
        (30.0, (), (5, 6, 7, 8, 9)),
        (60.0, (11, 12, 1, 2, 3, 4), (6, 7, 8)),
    ],
)
def test_the_climate_rule_by_latitude(lat, ice, growing):
    c = derived_climate(lat)
    assert (c.ice_months, c.growing_months) == (ice, growing)


def test_a_stated_climate_wins_and_the_rest_is_derived_and_says_so():
    d = definition_from_geojson(
        "x", OUTLINE, baseline=("2016-11", "2016-11"), climate={"ice_months": []}
    )
    c = d.site_climate()
    assert c.ice_months == () and c.growing_months == (5, 6, 7, 8, 9)
    assert c.derived == ("growing_months",)
    assert "ice months: none;" in c.describe() and "(derived from the latitude)" in c.describe()


def _outline(points):
    return {"type": "Polygon", "coordinates": [points + [points[0]]]}


BASE = ["--baseline", "2016-11"]
BAD = [
    # (what, outline GeoJSON, facilities GeoJSON or None, message)
    (
        "a multipolygon",
        {"type": "MultiPolygon", "coordinates": [OUTLINE["geometry"]["coordinates"]]},
        None,
        r"outline: must be a Polygon, got a MultiPolygon",
    ),
    ("a point", {"type": "Point", "coordinates": [125.4, 38.7]}, None, r"must be a Polygon"),
    (
        "two features",
        {"type": "FeatureCollection", "features": [OUTLINE, OUTLINE]},
        None,
        r"outline: must be one polygon, got 2 features",
    ),
    (
        "across the antimeridian",
        _outline([[179.95, -16.8], [-179.95, -16.8], [-179.95, -16.7], [179.95, -16.7]]),
        None,
        r"outline: crosses the antimeridian",
    ),
    (
        "far past a UTM zone edge",
        _outline([[119.7, 38.72], [120.2, 38.72], [120.2, 38.74], [119.7, 38.74]]),
        None,
        r"outline: reaches 17\.4 km past the edge of UTM zone 50 .*at most 10 km",
    ),
    (
        "too large for one store",
        _outline([[125.0, 38.5], [125.6, 38.5], [125.6, 38.9], [125.0, 38.9]]),
        None,
        rf"larger than one store holds \({MAX_SITE_PX / 1e6:.0f} Mpx.*several sites",
    ),
    (
        "a self-intersecting outline",
        _outline([[125.38, 38.72], [125.40, 38.735], [125.40, 38.72], [125.38, 38.735]]),
        None,
        r"outline is not a valid polygon: Self-intersection",
    ),
    (
        "a facility outside the outline",
        OUTLINE,
        {
            "type": "Feature",
            "properties": {"name": "far", "kind": "yard"},
            "geometry": _poly(125.41, 38.72, 125.42, 38.73),
        },
        r"facilities\[0\] \(far\)\.polygon: [\d,]+ m² of it lie outside the site's outline",
    ),
    (
        "an unknown kind",
        OUTLINE,
        {
            "type": "Feature",
            "properties": {"name": "q", "kind": "pier"},
            "geometry": _poly(125.385, 38.722, 125.395, 38.727),
        },
        r"facilities\[0\]\.kind: Input should be 'berth', 'quay'",
    ),
    (
        "a facility without a name",
        OUTLINE,
        {
            "type": "Feature",
            "properties": {"kind": "yard"},
            "geometry": _poly(125.385, 38.722, 125.395, 38.727),
        },
        r"facilities: feature 0: needs a `name` property",
    ),
]


@pytest.mark.parametrize(("what", "outline", "facilities", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_definitions_are_refused_naming_the_field_and_nothing_is_written(
    what, outline, facilities, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("NAMPO_HOME", str(tmp_path / "home"))
    (tmp_path / "outline.geojson").write_text(json.dumps(outline))
    args = ["site", "add", "bad", "--outline", str(tmp_path / "outline.geojson"), *BASE]
    if facilities is not None:
        (tmp_path / "facilities.geojson").write_text(json.dumps(facilities))
        args += ["--facilities", str(tmp_path / "facilities.geojson")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "home" / "sites").exists() or not any(
        (tmp_path / "home" / "sites").iterdir()
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("baseline"), r"baseline: Field required"),
        (
            lambda d: d["baseline"].update(last="2015-01"),
            r"baseline: .*last 2015-01 is before first",
        ),
        (lambda d: d.update(tile_px=8), r"tile_px: Input should be greater than or equal to 16"),
        (
            lambda d: d.update(climate={"ice_months": [13]}),
            r"climate\.ice_months: .*distinct months",
        ),
        (lambda d: d["grid"].update(origin=[703025, 4293060]), r"grid\.origin: .*multiples of 20"),
        (
            lambda d: d.update(outline=[[126.0, 38.7], [126.01, 38.7], [126.01, 38.71]]),
            r"grid: .* does not cover the outline",
        ),
        (lambda d: d.update(name="Nampo Port"), r"name: String should match pattern"),
        (lambda d: d["catalog"].update(profile="google"), r"catalog\.profile: Input should be"),
    ],
)
def test_bad_definition_files_name_the_field(edit, message, tmp_path, capsys):
    data = yaml.safe_load((BUILTIN_SITES / "nampo.yaml").read_text())
    edit(data)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SiteError, match=message):
        load_definition(path)
    assert main(["site", "validate", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
