"""The registry of watched sites, in a folder and under a prefix of an S3 server on
loopback: entries written whole by concurrent writers, names refused twice, unknown names
answered with the registered ones, and the `nampo site` commands on it."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest
import yaml

from nampo.cli import main
from nampo.scenario.known_sites import KNOWN_SITES, register_builtin
from nampo.sites import SiteError
from nampo.sites.geojson import definition_from_geojson
from nampo.sites.registry import Registry
from tests.conftest import make_bucket
from tests.sites.test_definition import FACILITIES, OUTLINE

BUCKET = "nampo-sites"


@pytest.fixture(scope="module")
def s3_sites(s3_server: str) -> str:
    make_bucket(s3_server, BUCKET)
    return s3_server


@pytest.fixture(params=["folder", "s3"])
def registry_url(request, tmp_path) -> tuple[str, dict]:
    """(URL, storage options) of a new, empty registry."""
    if request.param == "folder":
        return str(tmp_path / "sites"), {}
    endpoint = request.getfixturevalue("s3_sites")
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    return f"s3://{BUCKET}/{tmp_path.name}/sites", options


def _definition(name: str, title: str = "x"):
    return definition_from_geojson(
        name, OUTLINE, baseline=("2016-11", "2017-10"), facilities=FACILITIES, title=title
    )


def test_add_get_list_remove(registry_url):
    url, options = registry_url
    reg = Registry(url, options)
    assert reg.names() == []
    with pytest.raises(SiteError, match=r"unknown site 'east'; registered sites in .*: none"):
        reg.get("east")
    d = _definition("east")
    reg.add(d)
    assert reg.names() == ["east"] and "east" in reg
    got = reg.get("east")
    assert got.grid is not None, "the registry pins the derived grid"
    assert got.to_site() == d.to_site() and got.facilities == d.facilities
    with pytest.raises(SiteError, match="'east' is already registered"):
        reg.add(_definition("east", "another"))
    assert reg.get("east").title == "x"
    reg.add(_definition("east", "replaced"), replace=True)
    assert reg.get("east").title == "replaced"
    with pytest.raises(SiteError, match=r"registered sites in .*: east"):
        reg.site("west")
    reg.remove("east")
    assert reg.names() == []
    with pytest.raises(SiteError, match="unknown site 'east'"):
        reg.remove("east")


def _add_many(url: str, options: dict, prefix: str, count: int, start) -> list[str]:
    start.wait()  # both writers begin together
    reg = Registry(url, options)
    errors = []
    for i in range(count):
        for name in (f"{prefix}-{i}", f"both-{i}"):  # own names, and names both add
            try:
                reg.add(_definition(name, title=f"{prefix} {i} " + "x" * 2000))
            except SiteError as exc:
                errors.append(str(exc))
    return errors


def test_two_processes_adding_sites_at_once_leave_every_entry_whole(registry_url):
    url, options = registry_url
    ctx = mp.get_context("spawn")
    start = ctx.Manager().Barrier(2)
    count = 6
    with ctx.Pool(2) as pool:
        results = [pool.apply_async(_add_many, (url, options, p, count, start)) for p in ("a", "b")]
        errors = [e for r in results for e in r.get(timeout=300)]
    reg = Registry(url, options)
    names = reg.names()
    assert names == sorted(
        [f"a-{i}" for i in range(count)]
        + [f"b-{i}" for i in range(count)]
        + [f"both-{i}" for i in range(count)]
    )
    for name in names:
        d = reg.get(name)  # parses and validates: whole
        assert d.title.startswith(("a ", "b ")) and d.title.endswith("x" * 2000)
    if url.startswith("s3://"):
        assert all("already registered" in e for e in errors)
    else:  # on a disk, adding a name is one step: exactly one writer wins each shared name
        assert len(errors) == count and all("already registered" in e for e in errors)
        assert not [p for p in os.listdir(url) if p.startswith(".")], "no temporary file left"


def test_the_site_commands_on_a_registry_in_s3(s3_sites, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NAMPO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NAMPO_SITES", f"s3://{BUCKET}/cli/sites")
    monkeypatch.setenv("NAMPO_S3_ENDPOINT_URL", s3_sites)
    monkeypatch.setenv("NAMPO_S3_KEY", "testing")
    monkeypatch.setenv("NAMPO_S3_SECRET", "testing")
    (tmp_path / "o.geojson").write_text(json.dumps(OUTLINE))
    (tmp_path / "f.geojson").write_text(json.dumps(FACILITIES))
    add = [
        "site",
        "add",
        "east-quay",
        "--outline",
        str(tmp_path / "o.geojson"),
        "--facilities",
        str(tmp_path / "f.geojson"),
        "--title",
        "East quay",
        "--baseline",
        "2016-11..2017-10",
        "--ice-months",
        "",
    ]
    assert main(add) == 0
    out = capsys.readouterr().out
    assert f"registered 'east-quay' in s3://{BUCKET}/cli/sites/east-quay.yaml" in out
    assert main(add) == 2
    assert "already registered" in capsys.readouterr().err
    assert main(["site", "list"]) == 0
    assert "east-quay" in capsys.readouterr().out
    assert main(["site", "show", "east-quay"]) == 0
    shown = capsys.readouterr().out
    assert "EPSG:32651" in shown and "ice months: none;" in shown
    assert "growing months: 5, 6, 7, 8, 9 (derived from the latitude)" in shown
    assert "facility  quay (quay, 1 berths): East quay" in shown
    assert "last run  none (no store yet)" in shown
    assert main(["site", "show", "east-quay", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["climate"] == {"ice_months": []} and doc["grid"]["crs"] == "EPSG:32651"
    assert main(["site", "remove", "east-quay"]) == 0
    assert "is kept" in capsys.readouterr().out
    assert main(["site", "show", "east-quay"]) == 2
    assert "unknown site 'east-quay'" in capsys.readouterr().err


def test_builtin_sites_register_once_and_an_edited_entry_is_kept(tmp_path):
    reg = Registry(tmp_path / "sites")
    assert register_builtin(reg, "harbour-mini")
    entry = tmp_path / "sites" / "harbour-mini.yaml"
    doc = yaml.safe_load(entry.read_text())
    assert doc["grid"]["origin"] == [709160.0, 4289200.0]
    doc["title"] = "Edited by an operator"
    entry.write_text(yaml.safe_dump(doc))
    assert not register_builtin(reg, "harbour-mini")
    assert reg.get("harbour-mini").title == "Edited by an operator"
    assert reg.site("harbour-mini").grid == KNOWN_SITES["harbour-mini"].site().grid


def test_an_entry_of_another_name_is_refused(tmp_path: Path):
    reg = Registry(tmp_path)
    reg.add(_definition("east"))
    (tmp_path / "east.yaml").rename(tmp_path / "west.yaml")
    with pytest.raises(SiteError, match=r"west\.yaml: holds the site 'east'"):
        reg.get("west")
