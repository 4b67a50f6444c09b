"""Build a scenario's archive: COGs, STAC items and ground truth, in one folder.

The folder is built in a temporary place beside its final location and renamed into place
at the end, so an interrupted or failed build leaves nothing half-written. Its name holds
the scenario's fingerprint: a second build of the same scenario finds it and does no work.

Layout (documented in docs/scenario.md, "The archive")::

    <archives>/<name>-<fingerprint12>/
        manifest.json            what was built, from what, and its size
        scenario.yaml            the scenario as given
        collection.json          STAC Collection (Earth Search v1 sentinel-2-l2a shape)
        items.ndjson             one STAC Item per line, time-ordered, absolute hrefs
        items/<item id>/B02.tif  COGs: B01..B12, B8A, SCL, AOT, WVP, TCI
        truth/events.geojson     the scenario's events (type, facility, geometry, dates, m²)
        truth/events.tif         per pixel: event number, day of change, class before/after
        truth/scenes.csv         per datatake: coverage, clouds, ice, vessel counts
        truth/vessels.csv        every ship drawn: datatake, facility, berth, size, position
        truth/scenes/<datatake>.tif  per datatake: class, cloud %, shadow %, covered
"""

from __future__ import annotations

import ast
import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import importlib.util
import json
import multiprocessing as mp
import os
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nampo.errors import ScenarioError
from nampo.io.cog import write_cog
from nampo.scenario import render
from nampo.scenario.layout import Layout, build_layout, day_number, event_geometry
from nampo.scenario.model import ACTIVITY_EVENTS, Scenario, load_scenario
from nampo.scenario.schedule import datatakes
from nampo.scenario.stac_items import build_collection
from nampo.scenario.windows import majority

__all__ = [
    "renderer_sources",
    "RENDERER_VERSION",
    "Archive",
    "archive_dir",
    "build_archive",
]


def _renderer_version() -> str:
    # The source of every nampo module the archive build runs is part of every archive's
    # cache key: any change to the code that draws the archive (the renderer's modules and
    # the library's it imports: COG writer, STAC items, grid...) makes a new archive.
    digest = hashlib.sha256()
    for name, path in sorted(renderer_sources().items()):
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def renderer_sources(root: str = __name__) -> dict[str, Path]:
    """Module name -> source file of `root` and every nampo module it imports, directly or
    through others (read with :mod:`ast`: module level and inside functions)."""
    out: dict[str, Path] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        spec = importlib.util.find_spec(name)
        if name in out or spec is None or spec.origin is None:
            continue
        path = Path(spec.origin)
        out[name] = path
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                todo += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
        todo = [m for m in todo if m.startswith("nampo.") and _is_module(m)]
    return out


def _is_module(name: str) -> bool:
    """Whether `name` is a module (``from m import f`` also names ``m.f``, a function)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


RENDERER_VERSION = _renderer_version()

_CTX: render.Context | None = None  # the worker's context (inherited through fork)


@dataclass(frozen=True)
class Archive:
    path: Path
    scenario: Scenario
    built: bool
    """False when the archive was already there (cache hit)."""

    @property
    def items_path(self) -> Path:
        return self.path / "items.ndjson"

    @property
    def collection_path(self) -> Path:
        return self.path / "collection.json"

    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())


def archive_dir(scenario: Scenario, archives: Path) -> Path:
    key = f"{scenario.fingerprint()}:{RENDERER_VERSION}"
    return archives / f"{scenario.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _render_one(take):
    assert _CTX is not None
    return render.render_datatake(_CTX, take)


def build_archive(
    scenario_path: str | Path, archives: Path, *, workers: int = 0, progress=None
) -> Archive:
    """Render a scenario into ``archives`` (or find it already built).

    Parameters
    ----------
    scenario_path : the scenario YAML file.
    archives : folder holding archives (created if missing).
    workers : render processes; 0 means one per core.
    progress : optional callable(done, total) called as datatakes finish.
    """
    scenario = load_scenario(scenario_path)
    final = archive_dir(scenario, Path(archives))
    if (final / "manifest.json").is_file():
        return Archive(final, scenario, built=False)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(
            f"cannot create archive folder {final.parent}: {exc.strerror}"
        ) from None
    # One render per archive: a second process asking for the same archive (two demos,
    # two test workers) waits for the first instead of rendering it again.
    with _exclusive(final.parent / f".lock-{final.name}"):
        if (final / "manifest.json").is_file():
            return Archive(final, scenario, built=False)
        return _build_once(scenario, Path(scenario_path), final, workers, progress)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a lock file created here and removed on exit).

    A process that waited may get the lock of a file its holder has already removed:
    it then locks the file that is there now (or a new one), so that two processes never
    hold the lock of the same path at once."""
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _build_once(
    scenario: Scenario, scenario_path: Path, final: Path, workers: int, progress
) -> Archive:
    tmp = final.parent / f".building-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _build(scenario, scenario_path, tmp, final, workers, progress)
        try:
            tmp.rename(final)
        except OSError:
            # Another build of the same scenario finished first: theirs is identical.
            if not (final / "manifest.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Archive(final, scenario, built=True)


def _build(
    scenario: Scenario, source: Path, tmp: Path, final: Path, workers: int, progress
) -> None:
    global _CTX
    started = time.perf_counter()
    layout = build_layout(scenario)
    takes = datatakes(scenario)
    _CTX = render.prepare(scenario, layout, tmp, final)
    n = workers or os.cpu_count() or 1
    results = []
    try:
        if n == 1:
            for i, take in enumerate(takes):
                results.append(render.render_datatake(_CTX, take))
                if progress:
                    progress(i + 1, len(takes))
        else:
            # fork: workers inherit the layout (hundreds of MB of rasters) without pickling.
            with ProcessPoolExecutor(n, mp_context=mp.get_context("fork")) as pool:
                for i, res in enumerate(pool.map(_render_one, takes, chunksize=2)):
                    results.append(res)
                    if progress:
                        progress(i + 1, len(takes))
    finally:
        _CTX = None

    items = [it for r in results for it in r.items]
    items.sort(key=lambda it: (it["properties"]["datetime"], it["id"]))
    with open(tmp / "items.ndjson", "w") as f:
        for it in items:
            f.write(json.dumps(it, separators=(",", ":")) + "\n")
    grid = scenario.site_grid
    start = dt.datetime.combine(scenario.period.start, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(scenario.period.end, dt.time(23, 59, 59), tzinfo=dt.UTC)
    collection = build_collection(grid.bbox_lonlat(), start, end)
    (tmp / "collection.json").write_text(json.dumps(collection, indent=1))
    _copy_scenario(Path(source), tmp)

    truth = tmp / "truth"
    truth.mkdir(exist_ok=True)
    _write_csv(truth / "scenes.csv", [r.truth for r in results])
    _write_csv(
        truth / "vessels.csv",
        [v for r in results for v in r.vessels],
        fields=[
            "datatake",
            "date",
            "facility",
            "berth",
            "event",
            "length_m",
            "beam_m",
            "lon",
            "lat",
        ],
    )
    _write_events(scenario, layout, truth)

    nbytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    manifest = {
        "scenario": scenario.name,
        "title": scenario.title,
        "fingerprint": scenario.fingerprint(),
        "renderer_version": RENDERER_VERSION,
        "seed": scenario.seed,
        "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 1),
        "datatakes": len(takes),
        "items": len(items),
        "grid": {
            "epsg": grid.epsg,
            "resolution": grid.resolution,
            "origin": [grid.x0, grid.y0],
            "size": [grid.width, grid.height],
        },
        "period": [scenario.period.start.isoformat(), scenario.period.end.isoformat()],
        "bytes": nbytes,
        "collection": collection["id"],
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _copy_scenario(source: Path, folder: Path) -> None:
    """The scenario file as given, beside the archive's data; the site definition it
    refers to is copied too (``site.yaml``), so the archive stays readable on its own."""
    text = source.read_text()
    ref = re.search(r"^site:[ \t]*([^\s#]+)", text, flags=re.MULTILINE)
    if ref is not None:
        shutil.copyfile(source.parent / ref.group(1), folder / "site.yaml")
        text = text[: ref.start(1)] + "site.yaml" + text[ref.end(1) :]
    (folder / "scenario.yaml").write_text(text)


def _write_csv(path: Path, rows: list[dict], fields: list[str] | None = None) -> None:
    fields = fields or (list(rows[0]) if rows else [])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _write_events(scenario: Scenario, layout: Layout, truth: Path) -> None:
    """events.geojson (one feature per event) and events.tif (per-pixel change truth)."""
    grid = layout.grid
    features = []
    for i, ev in enumerate(scenario.events, start=1):
        if ev.type.value == "vessel_visits":
            from shapely.ops import unary_union

            assert ev.facility is not None  # vessel_visits have one (the model checks)
            berths = layout.berths[ev.facility]
            used = ev.berths if ev.berths is not None else range(len(berths))
            geom = unary_union([berths[b] for b in used])
        else:
            geom = event_geometry(ev, grid)
        before = None
        if ev.type not in ACTIVITY_EVENTS:
            raster = next(r for r in layout.events if r.event.id == ev.id)
            prior = layout.classes_at(raster.start_day - 1)[raster.rows, raster.cols][raster.mask]
            codes, counts = np.unique(prior, return_counts=True)
            from nampo.scenario.model import CLASS_CODES

            names = {v: k.value for k, v in CLASS_CODES.items()}
            before = names[int(codes[np.argmax(counts)])]
        features.append(
            {
                "type": "Feature",
                "id": ev.id,
                "geometry": json.loads(json.dumps(grid.to_lonlat(geom).__geo_interface__)),
                "properties": {
                    "number": i,
                    "id": ev.id,
                    "type": ev.type.value,
                    "title": ev.title,
                    "brief": ev.brief,
                    "facility": ev.facility,
                    "start": ev.start.isoformat(),
                    "end": ev.end.isoformat(),
                    "area_m2": round(geom.area, 1),
                    "class_before": before,
                    "class_after": ev.target.value if ev.target else None,
                    "progress": ev.progress.value if ev.type not in ACTIVITY_EVENTS else None,
                },
            }
        )
    (truth / "events.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, indent=1)
    )

    # Per pixel (10 m): which event changed it last, on which day, from/to which class.
    fine_shape = layout.fine.shape
    number = np.zeros(fine_shape, "i4")
    day = np.zeros(fine_shape, "i4")
    numbers = {ev.id: i for i, ev in enumerate(scenario.events, start=1)}
    for r in layout.events:
        w_num, w_day = number[r.rows, r.cols], day[r.rows, r.cols]
        w_num[r.mask] = numbers[r.event.id]
        w_day[r.mask] = r.day_to[r.mask]
    first = layout.classes_at(day_number(scenario.period.start) - 1)
    last = layout.classes_at(day_number(scenario.period.end))
    k = 2
    # A pixel belongs to an event when more than half of it changed.
    number10 = majority(number.astype("u2"), k, strict_fill=0).astype("i4")
    day10 = day.reshape(grid.height, k, grid.width, k).max(axis=(1, 3))
    day10[number10 == 0] = 0  # a pixel mostly outside every event has no change day
    stack = np.stack(
        [
            number10,
            day10,
            majority(first, k).astype("i4"),
            majority(last, k).astype("i4"),
        ]
    )
    write_cog(
        truth / "events.tif", stack, grid.transform, grid.epsg, nodata=None, resampling="nearest"
    )
