"""Building archives: cached, atomic (nothing half-written), and driven from the CLI."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

from nampo.cli import main
from nampo.scenario import render
from nampo.scenario.archive import archive_dir, build_archive
from nampo.scenario.model import load_scenario
from tests.conftest import MINI


def test_archive_layout(mini_archive):
    root = mini_archive.path
    m = mini_archive.manifest()
    items = [json.loads(line) for line in (root / "items.ndjson").read_text().splitlines()]
    assert m["items"] == len(items) > 100
    for name in (
        "collection.json",
        "scenario.yaml",
        "truth/events.geojson",
        "truth/events.tif",
        "truth/scenes.csv",
        "truth/vessels.csv",
    ):
        assert (root / name).is_file(), name
    # Every href is an absolute path to an existing file of this archive.
    for item in items[:5]:
        for asset in item["assets"].values():
            href = Path(asset["href"])
            assert href.is_absolute() and href.is_file() and root in href.parents
    # The scenario's copy stands alone: it reads the same wherever the archive is (nampo
    # score --archive reads it)
    assert load_scenario(root / "scenario.yaml").fingerprint() == load_scenario(MINI).fingerprint()
    # Time-ordered, ids unique.
    times = [it["properties"]["datetime"] for it in items]
    assert times == sorted(times)
    assert len({it["id"] for it in items}) == len(items)


def test_second_build_is_cached(mini_archive, archives_root):
    # How fast is benchmarks/archive_build.py's business; here: found, not rendered.
    again = build_archive(MINI, archives_root)
    assert again.built is False and again.path == mini_archive.path


def _build_in_process(root: str) -> tuple[str, bool]:
    archive = build_archive(MINI, Path(root), workers=1)
    return str(archive.path), archive.built


def test_two_processes_asking_for_one_archive_render_it_once(tmp_path: Path):
    """Two demos (or two test workers) asking for the same archive at once: one renders,
    the other waits and finds it; no lock or temporary folder is left."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_build_in_process, [str(tmp_path)] * 2))
    assert sorted(built for _, built in results) == [False, True]
    assert len({path for path, _ in results}) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(results[0][0]).name]


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch):
    calls = {"n": 0}
    real = render.render_datatake

    def flaky(ctx, take):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("disk on fire")
        return real(ctx, take)

    monkeypatch.setattr(render, "render_datatake", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_archive(MINI, tmp_path, workers=1)
    assert list(tmp_path.iterdir()) == [], "no archive and no temporary folder is left"


def _mini_data() -> dict:
    """The test harbour's scenario as data, to be written elsewhere: its site by full path."""
    data = yaml.safe_load(MINI.read_text())
    data["site"] = str((MINI.parent / data["site"]).resolve())
    return data


def test_cli_build_and_errors(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("NAMPO_HOME", str(tmp_path / "home"))
    broken = tmp_path / "broken.yaml"
    data = _mini_data()
    data["events"][0]["polygons"][0][0] = [125.0, 38.0]  # far outside the grid
    broken.write_text(yaml.safe_dump(data))
    assert main(["scenario", "build", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "events[0] (pond_drainage).polygons[0] leaves the grid" in err[0]
    assert not (tmp_path / "home" / "archives").exists() or not any(
        (tmp_path / "home" / "archives").iterdir()
    )

    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("name: [unclosed\n")
    assert main(["scenario", "validate", str(malformed)]) == 2
    assert "not valid YAML" in capsys.readouterr().err

    assert main(["scenario", "validate", str(MINI)]) == 0
    assert "73 datatakes" in capsys.readouterr().out


def test_archive_name_is_the_content_fingerprint(tmp_path: Path):
    sc = load_scenario(MINI)
    a = archive_dir(sc, tmp_path)
    data = _mini_data()
    data["seed"] += 1
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data))
    assert archive_dir(load_scenario(other), tmp_path) != a
    assert a.name.startswith("harbour-mini-")
