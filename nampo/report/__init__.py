"""The site report: a folder with an ``index.html`` that works offline, its pictures, the
numbers behind them (``report.json``) and exports for GIS users (COGs, events GeoJSON).

>>> report = build_report(Store("nampo.zarr"), "nampo-report", site)  # doctest: +SKIP
>>> report.index  # doctest: +SKIP
PosixPath('nampo-report/index.html')

The numbers come from the store (``data.py``), the pictures from matplotlib (``maps.py``),
the files for GIS from :mod:`nampo.io.cog` (``exports.py``). The folder is built beside
its destination and moved into place when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from nampo.analysis.dating import ChangeParams
from nampo.errors import NampoError
from nampo.report.data import ACTIVITY, ReportData, Scorer, gather
from nampo.sites import Site

__all__ = ["EXPORT_NOTES", "Report", "Scorer", "build_report", "cpu_seconds", "draw"]

EXPORT_NOTES = {
    "composite.tif": "the overview's composite: red, green, blue surface reflectance (float32)",
    "composite-truecolour.tif": "the same, as drawn (8-bit RGB)",
    "change-type.tif": "change type per pixel (uint8 with a colour table; 0: no change)",
    "change.tif": "day of change, window, confidence and magnitude per pixel (float32)",
    "events.geojson": "the events' outlines and properties (lon/lat)",
}


@dataclass
class Report:
    folder: Path
    data: ReportData
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock time spent reading the store (events included), drawing and exporting."""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU time of the same stages (this process and the drawing processes' pictures;
    not the drawing server's one-off imports, about 2 s)."""

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


POOL_MIN_IMAGES = 32
"""Fewer pictures are drawn in this process. A picture costs about 0.2 CPU s; the drawing
processes about 3 (importing matplotlib and nampo once, the data sent to each): below
this, they cost more than they save on 2 cores."""


def _jobs(data: ReportData) -> list[tuple[str, str, str]]:
    """(kind, what, file) of every picture of the report."""
    jobs = [("overview", "", "overview.png")] if data.overview is not None else []
    jobs += [("event", e.id, f"events/{e.id}.png") for e in data.events]
    jobs += [("facility", f.name, f"facilities/{f.name}.png") for f in data.facilities]
    return jobs


_DATA: ReportData | None = None
"""The report's data in a drawing process (sent once, by the pool's initializer)."""


def _set_data(data: ReportData) -> None:
    global _DATA
    _DATA = data


def _draw_one(job: tuple[str, str, str], folder: Path, data: ReportData | None = None) -> float:
    """Draw one picture; its CPU seconds (a drawing process's are not this one's)."""
    from nampo.report import maps

    c0 = time.process_time()
    data = data or _DATA
    assert data is not None  # given, or sent to the drawing process
    kind, what, name = job
    path = folder / name
    if kind == "overview":
        maps.draw_overview(data, path)
    elif kind == "event":
        maps.draw_event(data, next(e for e in data.events if e.id == what), path)
    else:
        series = next(f for f in data.facilities if f.name == what)
        own = [e for e in data.events if what in e.facilities]
        px_ha = data.site.grid.resolution**2 / 1e4
        maps.draw_facility(series, own, path, ACTIVITY, px_ha)
    return time.process_time() - c0


def draw(data: ReportData, folder: Path) -> tuple[dict, float]:
    """Every picture of the report into `folder`, and the CPU seconds of the drawing
    processes. Many pictures are drawn by one process per core (matplotlib draws on one
    thread), forked from a fresh single-threaded server that has imported matplotlib and
    nampo once (this process has run Dask's threads: it is not forked itself)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = _jobs(data)
    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < POOL_MIN_IMAGES or workers < 2:
        for job in jobs:
            _draw_one(job, folder, data)
        pool_cpu = 0.0
    else:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["nampo.report.maps"])
        with ProcessPoolExecutor(workers, ctx, initializer=_set_data, initargs=(data,)) as pool:
            pool_cpu = sum(pool.map(_draw_one, jobs, [folder] * len(jobs)))
    images = {
        "overview": "overview.png" if data.overview is not None else None,
        "chips": {what: name for kind, what, name in jobs if kind == "event"},
        "series": {what: name for kind, what, name in jobs if kind == "facility"},
    }
    return images, pool_cpu


def build_report(
    store,
    out: str | Path,
    site: Site | None = None,
    *,
    change: ChangeParams = ChangeParams(),  # noqa: B008 (frozen)
    score: Scorer | None = None,
) -> Report:
    """Write the report of `store` into the folder `out` (replaced when it exists).

    `site` gives the facilities (default: the store's site, without them), `change` the
    site's seasons for change dating (as `nampo events` and the main job date them), and
    `score` the events' score: the report shows one only when it is given one.
    """
    from nampo.report import exports, page

    if not store.exists():
        raise NampoError(f"no nampo store at {store.url}")
    out = Path(out).absolute()
    site = site or store.site
    t0, c0 = time.perf_counter(), cpu_seconds()
    data = gather(store, site, change, score)
    t1, c1 = time.perf_counter(), cpu_seconds()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "events").mkdir(parents=True)
    (tmp / "facilities").mkdir()
    try:
        images, pool_cpu = draw(data, tmp)
        t2, c2 = time.perf_counter(), cpu_seconds() + pool_cpu
        written = exports.export(data, tmp)
        t3, c3 = time.perf_counter(), cpu_seconds()
        listing = [(p.name, EXPORT_NOTES[p.name]) for p in written]
        (tmp / "report.json").write_text(json.dumps(page.numbers(data), indent=1))
        (tmp / "index.html").write_text(page.render(data, images, listing, out))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = {"read": t1 - t0, "draw": t2 - t1, "export": t3 - t2,
               "total": time.perf_counter() - t0}  # fmt: skip
    c3 += pool_cpu
    cpu = {"read": c1 - c0, "draw": c2 - c1, "export": c3 - c2,
           "total": cpu_seconds() + pool_cpu - c0}  # fmt: skip
    return Report(out, data, seconds, cpu)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
