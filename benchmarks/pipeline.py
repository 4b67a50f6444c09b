"""Benchmark: the pipeline against the floor of reading its COG blocks, on the Nampo archive.

Prints side by side, from one run:

(a) the floor: the time to only open, read and decode every COG block the runs need (each
    needed scene's band windows over the site, once, with plain rasterio), in one process
    and in two (the fair comparison for runs on two worker processes); also, for
    information, the same reads tile by tile, as the units do them;
(a') the loader's own floor: stackstac's read of every unit's cube (``cube.read_cube``:
    each tile's baseline, each (tile, month) of the period and the month before it), on
    two fresh processes that keep their open files between units as workers do, and
    nothing else; then the same with the units' masking, day merge and median composite
    of the bands (no index, class, change metric or write). Any (tile, month) pipeline
    on stackstac pays at least a', whatever it computes after the read;
(b) ``pipeline.process`` with loader stackstac, into a fresh local store, on nampo's
    local cluster (``cluster.local_cluster``: 2 worker processes, one thread each);
(c) the same with loader odc (odc-stac);
(d) (b) on one worker, for the speed-up from one to two worker processes;
(e) (b) over a period four times as long, for the growth of peak memory;

with the ratios b/a and c/a (and b against a'), peak memory (the summed resident memory
of this process, which holds the client, the scheduler and the nannies, and of the worker
processes, sampled every 50 ms), each beside its aim, and which aims are met. For each
run, where the workers waited (from Dask's task stream): before their first unit (the
catalog search, the plan), at the barrier between baselines and months, between units,
and after their last unit.

The baseline. Every store computes its baseline (one unit per tile, over the scenario's
first 12 months) once, before any month. The timed runs start from an empty store, so
they include it, like a site's first run. The table also splits each run at the moment
the last baseline unit finished ("baseline" and "months" columns; the latter is what a
later run of the same period costs), and the floor the same way: the baseline scenes,
then the scenes of the months plus the month before the first (whose composite the
first month is compared with).

Out of the timings, and printed apart: building or finding the archive, starting the STAC
API in a temporary NAMPO home and loading it (it is always stopped at the end), cluster
start-up and worker imports. The catalog search is timed: it is part of ``process``. The
needed COGs are read once before the first timing, so that every measurement reads from
the page cache. The floors run before and after the pipeline runs, the faster pass kept.

The machine is shared: each row shows how many cores other processes used meanwhile and
flags the rows they disturbed; ``--repeat 2`` runs every setting twice, interleaved, and
keeps the faster (with the higher memory peaks).

Run (the default takes about 5 minutes on 2 quiet cores, ``--quick`` about 2)::

    uv run python benchmarks/pipeline.py                 # Nampo, 3 months (+ 12 months)
    uv run python benchmarks/pipeline.py --quick         # Nampo, 1 month, 3-month baseline
    uv run python benchmarks/pipeline.py --scenario scenarios/tests/harbour-mini.yaml --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import logging
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from nampo.io.cube import Reading, read_cube
from nampo.io.gdal import GdalSettings
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store
from nampo.products.variables import COMPOSITE_BANDS
from nampo.run.cluster import local_cluster
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec, find_scenes
from nampo.run.results import UnitResult
from nampo.run.units import add_months, month_end, months, parse_month
from nampo.run.work import read_composite
from nampo.scenario.archive import build_archive
from nampo.services import pgstac
from nampo.settings import Settings
from nampo.sites import Site, Tile

REPO = Path(__file__).resolve().parent.parent
BANDS = (*COMPOSITE_BANDS, "scl")
"""The bands every unit reads (work.read_composite)."""
GIB = 2**30
Bounds = tuple[float, float, float, float]

AIM_RATIO = 2.0
AIM_PEAK = 2 * GIB
AIM_GROWTH = 0.20
AIM_SPEEDUP = 1.6
DISTURBED = 0.25
"""Cores used by other processes during a measurement above which it is flagged."""


# --------------------------------------------------------------------------------------
# Measuring: wall time, peak memory of the process tree, CPU used by others


class Sampler:
    """Samples this process and its descendants every 50 ms: the peak of their summed
    resident memory, the peak of the largest single child, and CPU seconds used by the
    tree and by the whole machine (to tell how busy other processes kept the cores)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self.peak_child = 0
        self.peak_second = 0
        """Peak after :meth:`second_phase` was called (0 if it never was)."""
        self._second = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}

    def _tree(self) -> list[psutil.Process]:
        me = psutil.Process()
        return [me, *me.children(recursive=True)]

    def _sample(self) -> None:
        total = 0
        for proc in self._tree():
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    cpu = sum(proc.cpu_times()[:2])
                    created = proc.create_time()
            except psutil.Error:
                continue
            total += rss
            if proc.pid != os.getpid():
                self.peak_child = max(self.peak_child, rss)
            if proc.pid not in self._cpu_start:
                # A process born during the measurement counts from zero.
                self._cpu_start[proc.pid] = 0.0 if created >= self._wall0 else cpu
            self._cpu_last[proc.pid] = cpu
        self.peak = max(self.peak, total)
        if self._second:
            self.peak_second = max(self.peak_second, total)

    def second_phase(self) -> None:
        """Start a second peak (the whole-run peak goes on)."""
        self._second = True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self._wall0 = time.time()
        self._machine0 = _busy_cpu()
        self._t0 = time.perf_counter()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.seconds = time.perf_counter() - self._t0
        used = {p: self._cpu_last[p] - self._cpu_start[p] for p in self._cpu_last}
        ours = sum(used.values())
        self.cpu_seconds = ours
        self.main_cores = used.get(os.getpid(), 0.0) / self.seconds
        self.children_cores = (ours - used.get(os.getpid(), 0.0)) / self.seconds
        self.others_cores = max(0.0, _busy_cpu() - self._machine0 - ours) / self.seconds


def _busy_cpu() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def tree_rss() -> int:
    """Summed resident memory of this process and its descendants now."""
    with Sampler() as s:
        pass
    return s.peak


# --------------------------------------------------------------------------------------
# (a) The floor: read and decode the blocks, nothing else


def _site_window(src, bounds: Bounds, epsg: int) -> Window | None:
    """The window of `src` covering `bounds` (in EPSG `epsg`), rounded out to whole pixels;
    None when they do not overlap (then the pipeline reads nothing of it either)."""
    if src.crs.to_epsg() != epsg:
        bounds = transform_bounds(f"EPSG:{epsg}", src.crs, *bounds, densify_pts=21)
    w = from_bounds(*bounds, transform=src.transform)
    col0, row0 = max(0, int(np.floor(w.col_off))), max(0, int(np.floor(w.row_off)))
    col1 = min(src.width, int(np.ceil(w.col_off + w.width)))
    row1 = min(src.height, int(np.ceil(w.row_off + w.height)))
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_blocks(hrefs: Sequence[str], bounds: Bounds, epsg: int) -> tuple[int, int]:
    """Open each COG and read (decode) its window over `bounds`: (pixels, blocks) read."""
    pixels = blocks = 0
    with GdalSettings().env("read"):
        for href in hrefs:
            with rasterio.open(href) as src:
                w = _site_window(src, bounds, epsg)
                if w is None:
                    continue
                pixels += src.read(1, window=w).size
                bh, bw = src.block_shapes[0]
                rows = (w.row_off + w.height - 1) // bh - w.row_off // bh + 1
                cols = (w.col_off + w.width - 1) // bw - w.col_off // bw + 1
                blocks += rows * cols
    return pixels, blocks


def _noop(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _warm_reader(seconds: float) -> int:
    _prepare_worker()
    return _noop(seconds)


@dataclass
class Floor:
    seconds: float
    pixels: int
    blocks: int
    others_cores: float
    cpu: float
    """CPU seconds of this process and its pool (the load of other processes does not
    inflate it much, unlike wall time)."""

    def __add__(self, other: Floor) -> Floor:
        wall = self.seconds + other.seconds
        others = self.others_cores * self.seconds + other.others_cores * other.seconds
        others /= max(wall, 1e-9)
        return Floor(
            wall,
            self.pixels + other.pixels,
            self.blocks + other.blocks,
            others,
            self.cpu + other.cpu,
        )


def floor(jobs: Sequence[tuple[list[str], Bounds]], epsg: int, pool) -> Floor:
    """Read every job (the hrefs of one scene, the bounds to read) here or on the pool."""
    with Sampler() as s:
        if pool is None:
            results = [read_blocks(hrefs, bounds, epsg) for hrefs, bounds in jobs]
        else:
            hrefs, bounds = zip(*jobs, strict=True) if jobs else ((), ())
            results = list(pool.map(read_blocks, hrefs, bounds, [epsg] * len(jobs)))
    pixels, blocks = sum(r[0] for r in results), sum(r[1] for r in results)
    return Floor(s.seconds, pixels, blocks, s.others_cores, s.cpu_seconds)


def _touches(scene: NormalisedItem, bounds: Bounds, epsg: int) -> bool:
    """Whether any band of `scene` covers part of `bounds` (as the loaders decide it)."""
    for name in BANDS:
        band = scene.bands.get(name)
        if band is None or band.transform is None or band.shape is None:
            return True
        a, _, c, _, e, f = band.transform
        xs, ys = (c, c + a * band.shape[1]), (f, f + e * band.shape[0])
        box = (min(xs), min(ys), max(xs), max(ys))
        if scene.epsg != epsg:
            box = transform_bounds(f"EPSG:{scene.epsg}", f"EPSG:{epsg}", *box)
        if box[0] < bounds[2] and box[2] > bounds[0] and box[1] < bounds[3] and box[3] > bounds[1]:
            return True
    return False


def floor_jobs(
    scenes: Sequence[NormalisedItem], site: Site, by_tile: bool
) -> list[tuple[list[str], Bounds]]:
    """One job per scene over the site's window, or per (tile, scene) over each tile's."""
    areas = [site.tile_grid(t).bounds for t in site.tiles] if by_tile else [site.grid.bounds]
    return [
        ([s.bands[b].href for b in BANDS if b in s.bands], area)
        for area in areas
        for s in scenes
        if _touches(s, area, site.grid.epsg)
    ]


def loader_jobs(
    base_scenes: Sequence[NormalisedItem],
    month_scenes: Sequence[NormalisedItem],
    site: Site,
    period: tuple[dt.date, dt.date],
) -> dict[str, list[tuple[Site, Tile, list[NormalisedItem]]]]:
    """The reads the units make, as (site, tile, scenes): one per tile over the baseline,
    and one per (tile, month) over the period and the month before it."""
    months_read = [add_months(period[0], -1), *months(*period)]
    return {
        "baseline": [(site, t, list(base_scenes)) for t in site.tiles],
        "months": [
            (site, t, _scenes_between(month_scenes, m, m)) for m in months_read for t in site.tiles
        ],
    }


def read_unit(site: Site, tile: Tile, scenes: list[NormalisedItem], compose: bool) -> int:
    """stackstac's read of one unit's cube, as the units make it, and nothing else; with
    `compose`, also the units' masking, day merge and median composite of the bands (no
    index, class, change metric or write). Returns the pixels of the cube read (0 with
    `compose`)."""
    if compose:
        # The units' own read-and-composite step (bands only), on the same scenes.
        read_composite(site, tile, scenes, Reading(), bands_only=True)
        return 0
    return int(read_cube(scenes, site.tile_grid(tile), BANDS).size)


def loader_floor(jobs, compose: bool, pool) -> Floor:
    """Every unit's read (and composite) on the pool's processes, which keep their open
    files between jobs as the workers do."""
    with Sampler() as s:
        sites, tiles, scenes = zip(*jobs, strict=True)
        pixels = sum(pool.map(read_unit, sites, tiles, scenes, [compose] * len(jobs)))
    return Floor(s.seconds, pixels, 0, s.others_cores, s.cpu_seconds)


def warm_page_cache(paths: set[str]) -> int:
    """Read each file once so that every timing reads from memory, not from disk."""
    n = 0
    for path in sorted(paths):
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                n += len(chunk)
    return n


# --------------------------------------------------------------------------------------
# (b)-(e) The pipeline on a local cluster


def _prepare_worker() -> int:
    # Imports before the clock starts; per-asset deprecation noise of stackstac 0.5.1.
    import nampo.io.cube  # noqa: F401
    import nampo.run.execute  # noqa: F401

    warnings.simplefilter("ignore")
    return os.getpid()


@dataclass
class Run:
    label: str
    workers: int
    seconds: float
    baseline_seconds: float
    """From the start to the moment the last baseline unit finished."""
    peak: int
    """Peak of the summed RSS of this process (client, scheduler, nannies) and workers."""
    peak_months: int
    """The same peak, after the last baseline unit finished."""
    peak_worker: int
    idle: int
    """Summed RSS of the idle cluster before the run."""
    others_cores: float
    main_cores: float
    worker_cores: float
    unit_seconds: float
    """Sum of the units' own durations (UnitResult.seconds)."""
    cpu: float
    """CPU seconds of this process (client, scheduler, nannies) and the workers."""
    done: int
    failed: list[str] = field(default_factory=list)
    waits: dict[str, float] = field(default_factory=dict)
    """Seconds the workers (summed) spent without a unit: see :func:`worker_waits`."""

    @property
    def months_seconds(self) -> float:
        return self.seconds - self.baseline_seconds


def run_pipeline(
    label: str,
    site: Site,
    period: tuple[dt.date, dt.date],
    spec: CatalogSpec,
    loader: str,
    workers: int,
    root: Path,
) -> Run:
    from distributed import Client, get_task_stream

    store = Store(root / f"{label}.zarr")
    with (
        local_cluster(
            workers, silence_logs=logging.ERROR, local_directory=str(root / "dask")
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_prepare_worker)
        time.sleep(0.5)
        idle = tree_rss()
        failed: list[str] = []
        busy = [0.0]
        bases = [0]
        with Sampler() as s, get_task_stream(client) as stream:
            t0 = time.perf_counter()
            wall0 = time.time()
            base_end = t0

            def progress(r: UnitResult, done: int, total: int) -> None:
                nonlocal base_end
                busy[0] += r.seconds
                if r.status == "failed":
                    failed.append(f"{r.unit_id}: {r.error}")
                if r.unit.kind == "baseline":
                    base_end = time.perf_counter()
                    bases[0] += 1
                    if bases[0] == len(site.tiles):
                        s.second_phase()

            report = process(
                site,
                *period,
                store=store,
                spec=spec,
                client=client,
                loader=loader,
                progress=progress,
            )
            wall1 = time.time()
        worker_names = list(client.scheduler_info()["workers"])
    shutil.rmtree(store.url, ignore_errors=True)
    return Run(
        label=label,
        workers=workers,
        seconds=s.seconds,
        baseline_seconds=base_end - t0,
        peak=s.peak,
        peak_months=s.peak_second,
        peak_worker=s.peak_child,
        idle=idle,
        others_cores=s.others_cores,
        main_cores=s.main_cores,
        worker_cores=s.children_cores,
        unit_seconds=busy[0],
        cpu=s.cpu_seconds,
        done=report.count("done"),
        failed=failed,
        waits=worker_waits(stream.data, worker_names, wall0, wall1),
    )


def worker_waits(records, workers, start: float, end: float) -> dict[str, float]:
    """Where the workers waited (seconds summed over workers), from Dask's task stream:
    before their first unit (catalog search, plan, sending the scenes), between their last
    baseline and their first month (the barrier), other gaps between units, and after
    their last unit (the other worker's last units, the run's metadata)."""
    spans: dict[str, list[tuple[float, float, bool]]] = {w: [] for w in workers}
    for rec in records:
        for ss in rec.get("startstops", ()):
            if ss["action"] == "compute":
                spans.setdefault(rec["worker"], []).append(
                    (ss["start"], ss["stop"], "/baseline-" in str(rec["key"]))
                )
    waits = dict.fromkeys(("before", "barrier", "between", "after"), 0.0)
    for units in spans.values():
        if not units:
            waits["before"] += end - start
            continue
        units.sort()
        waits["before"] += units[0][0] - start
        waits["after"] += end - units[-1][1]
        for (_, stop, was_base), (begin, _, is_base) in itertools.pairwise(units):
            waits["barrier" if was_base and not is_base else "between"] += max(0.0, begin - stop)
    return waits


# --------------------------------------------------------------------------------------
# Main


def _scenes_between(scenes, first: dt.date, last: dt.date) -> list[NormalisedItem]:
    return [s for s in scenes if first <= s.datetime.date() <= month_end(last)]


def _periods(args, scenario, site: Site) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    n = args.months
    end = scenario.period.end.replace(day=1)
    if args.first:
        first = parse_month(args.first)
        last = parse_month(args.last) if args.last else add_months(first, n - 1)
        n = len(months(first, last))
    else:
        # The latest period whose 4x extension still ends inside the scenario: with
        # both platforms in every month, so the long period has the same scene density.
        first = add_months(end, -4 * n + 1)
        last = add_months(first, n - 1)
    after_baseline = add_months(site.baseline[1], 1)
    if first < after_baseline:
        raise SystemExit(
            f"period {first:%Y-%m} starts inside the baseline ({site.baseline[0]:%Y-%m}.."
            f"{site.baseline[1]:%Y-%m}): use a later --first or fewer --baseline-months"
        )
    long_last = add_months(first, 4 * n - 1)
    if long_last > end:
        print(f"note: the 4x period ends at {long_last:%Y-%m}, after the scenario ({end:%Y-%m})")
    return (first, last), (first, long_last)


def _disturbed(others_cores: float) -> str:
    return "*" if others_cores > DISTURBED else " "


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _interrupt(signum, frame) -> None:
    # SIGTERM unwinds like Ctrl-C: the STAC API is stopped and temporary files removed.
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Pipeline vs. floor, loaders, memory and scaling (see the module doc)."
    )
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "nampo.yaml")
    parser.add_argument(
        "--archives",
        type=Path,
        default=None,
        help="folder of rendered archives (default: NAMPO_HOME/archives; built if missing)",
    )
    parser.add_argument("--first", metavar="YYYY-MM", help="first month of the period")
    parser.add_argument("--last", metavar="YYYY-MM", help="last month (default: --months on)")
    parser.add_argument("--months", type=int, default=None, help="period length (default 3)")
    parser.add_argument(
        "--baseline-months", type=int, default=None, help="baseline length (default 12)"
    )
    parser.add_argument("--tile-px", type=int, default=256)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1-month period (4x: 4 months) and a 3-month baseline",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["odc", "1worker", "4x"],
        help="leave a run out (repeatable)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each pipeline setting N times (interleaved) and keep the fastest",
    )
    args = parser.parse_args()
    args.months = args.months or (1 if args.quick else 3)
    args.baseline_months = args.baseline_months or (3 if args.quick else 12)

    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings()
    archives = args.archives or settings.archives_dir

    t0 = time.perf_counter()
    archive = build_archive(args.scenario, archives, workers=2)
    archive_s = time.perf_counter() - t0
    scenario = archive.scenario
    site = Site.from_scenario(scenario, args.tile_px, args.baseline_months)
    period, long_period = _periods(args, scenario, site)

    home = Path(tempfile.mkdtemp(prefix="nampo-bench-home-"))
    state_dir = home / "stac"
    try:
        t0 = time.perf_counter()
        endpoint = pgstac.start(state_dir)
        n_items = pgstac.load(endpoint, archive.path)
        stac_s = time.perf_counter() - t0
        spec = CatalogSpec("local", endpoint.url)
        _bench(args, archive, archive_s, site, period, long_period, spec, n_items, stac_s, home)
    finally:
        pgstac.stop(state_dir)
        shutil.rmtree(home, ignore_errors=True)


def _bench(args, archive, archive_s, site, period, long_period, spec, n_items, stac_s, home):
    scenario = archive.scenario
    first, last = period
    t0 = time.perf_counter()
    scenes = find_scenes(site, first, long_period[1], spec)
    search_s = time.perf_counter() - t0
    base_scenes = _scenes_between(scenes, *site.baseline)
    month_scenes = _scenes_between(scenes, add_months(first, -1), last)
    long_scenes = _scenes_between(scenes, add_months(first, -1), long_period[1])
    needed = {s.bands[b].href for s in base_scenes + long_scenes for b in BANDS if b in s.bands}
    cached = warm_page_cache(needed)

    g = site.grid
    n_tiles = len(site.tiles)
    n_months = len(months(*period))
    n_long = len(months(*long_period))
    cores = os.cpu_count()
    print(
        f"scenario     {scenario.name}: {g.width} x {g.height} px at {g.resolution:g} m, "
        f"{n_tiles} tiles of {site.tile_px} px; archive {archive.path} "
        f"({'built' if archive.built else 'cached'}, {archive_s:.1f} s)"
    )
    print(
        f"catalog      local STAC API (stac-fastapi-pgstac) on {spec.url}: {n_items} items "
        f"loaded in {stac_s:.1f} s; search {search_s:.2f} s"
    )
    print(
        f"baseline     {site.baseline[0]:%Y-%m}..{site.baseline[1]:%Y-%m} "
        f"({args.baseline_months} months, {len(base_scenes)} scenes): {n_tiles} units"
    )
    print(
        f"period       {first:%Y-%m}..{last:%Y-%m} ({n_months} months, {len(month_scenes)} "
        f"scenes incl. the month before): {n_tiles * n_months} units; 4x period "
        f"{long_period[0]:%Y-%m}..{long_period[1]:%Y-%m}: {n_tiles * n_long} units"
    )
    print(
        f"machine      {cores} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"{cached / GIB:.2f} GiB of COGs read once into the page cache before timing"
    )
    print(
        "timing       runs start from an EMPTY store, so they INCLUDE the baseline units; "
        "'months' = after the last baseline unit finished\n"
        "             (what a later run of the same period costs). Floors read the same "
        "scenes and bands, each site window once."
    )
    print(flush=True)

    # (a) floors: in this process and on two spawned, warmed-up processes, measured before
    # and after the pipeline runs (the machine's load varies); the faster pass is kept.
    jobs = {
        ("site", "baseline"): floor_jobs(base_scenes, site, by_tile=False),
        ("site", "months"): floor_jobs(month_scenes, site, by_tile=False),
        ("tile", "baseline"): floor_jobs(base_scenes, site, by_tile=True),
        ("tile", "months"): floor_jobs(month_scenes, site, by_tile=True),
    }
    kinds = {"a1": ("site", None), "a2": ("site", 2), "a2t": ("tile", 2)}
    units_read = loader_jobs(base_scenes, month_scenes, site, period)
    floors: dict[str, tuple[Floor, Floor]] = {}

    def keep(key: str, fb: Floor, fm: Floor) -> None:
        best = floors.get(key)
        if best is None or (fb + fm).seconds < (best[0] + best[1]).seconds:
            floors[key] = (fb, fm)

    def floor_pass() -> None:
        with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_noop, [1.0, 1.0]))
            for key, (area, procs) in kinds.items():
                p = pool if procs else None
                fb = floor(jobs[area, "baseline"], site.grid.epsg, p)
                fm = floor(jobs[area, "months"], site.grid.epsg, p)
                keep(key, fb, fm)
        # The loader's own floor, on fresh processes each (files opened once per process,
        # as a run's new workers open them), with imports out of the timing.
        for key, compose in (("as", False), ("asc", True)):
            with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
                list(pool.map(_warm_reader, [0.5, 0.5]))
                fb = loader_floor(units_read["baseline"], compose, pool)
                fm = loader_floor(units_read["months"], compose, pool)
                keep(key, fb, fm)

    print("running (a) floors", flush=True)
    floor_pass()

    root = home / "runs"
    root.mkdir()
    runs: dict[str, Run] = {}
    plan = [("b", "stackstac", 2, period)]
    if "odc" not in args.skip:
        plan.append(("c", "odc", 2, period))
    if "1worker" not in args.skip:
        plan.append(("d", "stackstac", 1, period))
    if "4x" not in args.skip:
        plan.append(("e", "stackstac", 2, long_period))
    for rep in range(args.repeat):  # repeats interleaved, so a burst of load hits one run
        for key, loader, workers, per in plan:
            print(
                f"running ({key}) {loader} on {workers} worker(s), "
                f"{per[0]:%Y-%m}..{per[1]:%Y-%m}" + (f", repeat {rep + 1}" if rep else ""),
                flush=True,
            )
            r = run_pipeline(key, site, per, spec, loader, workers, root)
            print(
                f"  {r.seconds:.1f} s, peak {r.peak / GIB:.2f} GiB, {r.done} units done, "
                f"{len(r.failed)} failed; other processes used {r.others_cores:.2f} cores",
                flush=True,
            )
            for f in r.failed[:5]:
                print(f"    failed {f}")
            runs[key] = _keep(runs.get(key), r)
    print("running (a) floors again", flush=True)
    floor_pass()
    print()
    _table(floors, runs, n_months, n_long)
    _aims(floors, runs, n_months, n_long, n_tiles)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def _keep(best: Run | None, new: Run) -> Run:
    """The faster of two runs of the same setting, with the higher memory peaks of both."""
    if best is None:
        return new
    fast, slow = (new, best) if new.seconds < best.seconds else (best, new)
    fast.peak = max(fast.peak, slow.peak)
    fast.peak_months = max(fast.peak_months, slow.peak_months)
    fast.peak_worker = max(fast.peak_worker, slow.peak_worker)
    return fast


def _table(floors, runs, n_months: int, n_long: int) -> None:
    head = (
        f"{'':42}{'total':>8}{'baseline':>9}{'months':>8}{'peak mem':>10}{'months':>8}"
        f"{'largest':>9}{'others':>7}{'CPU':>7}"
    )
    print(head)
    print(
        f"{'':42}{'s':>8}{'s':>9}{'s':>8}{'GiB all':>10}{'peak':>8}{'process':>9}{'cores':>7}"
        f"{'s':>7}"
    )
    print("-" * len(head))
    labels = {  # key: (label, what the row read; None: its pixels and COG blocks)
        "a1": ("(a) floor: site windows, 1 process", None),
        "a2": ("(a) floor: site windows, 2 processes", None),
        "a2t": ("    tile by tile (as units read), 2 proc.", None),
        "as": ("(a') stackstac: the units' reads, 2 proc.", "Mpx on the site grid (20 m at 10 m)"),
        "asc": (
            "    + their median composites, 2 proc.",
            "scaled, masked, days merged, median (no index, class, change, write)",
        ),
    }
    for key, (label, note) in labels.items():
        fb, fm = floors[key]
        both = fb + fm
        what = note or f"Mpx, {both.blocks} blocks"
        if both.pixels:
            what = f"{both.pixels / 1e6:.0f} {what}"
        print(
            f"{label:42}{both.seconds:8.1f}{fb.seconds:9.1f}{fm.seconds:8.1f}{'':>10}{'':>8}"
            f"{'':>9}{both.others_cores:7.2f}{_disturbed(both.others_cores)}{both.cpu:6.1f}  "
            f"{what}"
        )
    names = {
        "b": f"(b) stackstac, 2 workers, {n_months} months",
        "c": f"(c) odc-stac, 2 workers, {n_months} months",
        "d": f"(d) stackstac, 1 worker, {n_months} months",
        "e": f"(e) stackstac, 2 workers, {n_long} months",
    }
    for key, r in runs.items():
        print(
            f"{names[key]:42}{r.seconds:8.1f}{r.baseline_seconds:9.1f}{r.months_seconds:8.1f}"
            f"{r.peak / GIB:10.2f}{r.peak_months / GIB:8.2f}{r.peak_worker / GIB:9.2f}"
            f"{r.others_cores:7.2f}{_disturbed(r.others_cores)}{r.cpu:6.1f}"
        )
    print(
        "peak mem: summed RSS of this process (client, scheduler, nannies) and the workers, "
        "sampled every 50 ms"
    )
    print(
        f"  (idle cluster before a run: {runs['b'].idle / GIB:.2f} GiB); 'months peak' after "
        "the last baseline unit; 'largest process' is the largest worker;"
    )
    print("  'others cores' = CPU used meanwhile by processes not ours (other jobs);")
    print(
        "  'CPU s' = CPU seconds of our processes (the work done; far less inflated by other "
        "jobs than wall time)"
    )
    every = [f + g for f, g in floors.values()] + list(runs.values())
    if any(_disturbed(x.others_cores) for x in every):
        print(
            f"  * other processes used more than {DISTURBED:g} core meanwhile: that time is "
            "inflated (re-run on a quiet machine, or --repeat 2 keeps the faster of two)"
        )
    print()
    print("where the run time goes (a worker is busy from the start to the end of its unit)")
    for key, r in runs.items():
        share = r.unit_seconds / r.workers / r.seconds * 100
        print(
            f"  ({key}) {r.done} units, {r.unit_seconds / max(r.done, 1):.2f} s each, busy "
            f"{share:3.0f} % of {r.workers} worker(s) x wall; CPU cores used: workers "
            f"{r.worker_cores:.2f}, client+scheduler {r.main_cores:.2f}, "
            f"others {r.others_cores:.2f}"
        )
        if r.waits:
            w = r.waits
            print(
                f"      workers waited {sum(w.values()):.1f} s (summed): before their first "
                f"unit {w['before']:.1f}, at the baseline barrier {w['barrier']:.1f}, "
                f"between units {w['between']:.1f}, after their last {w['after']:.1f}"
            )


def _aims(floors, runs, n_months: int, n_long: int, n_tiles: int) -> None:
    a1 = floors["a1"][0] + floors["a1"][1]
    a2 = floors["a2"][0] + floors["a2"][1]
    a2t = floors["a2t"][0] + floors["a2t"][1]
    a2m = floors["a2"][1].seconds
    b = runs["b"]
    verdicts: dict[str, bool] = {}
    print()
    print("ratios and aims (a = the floor on 2 processes, like (b)'s 2 workers)")
    verdicts["b/a <= 2"] = b.seconds / a2.seconds <= AIM_RATIO
    print(
        f"  b/a {b.seconds / a2.seconds:6.2f}   aim <= {AIM_RATIO:g}: "
        f"{_verdict(verdicts['b/a <= 2'])}   (months only {b.months_seconds / a2m:.2f}; "
        f"b / 1-process floor {b.seconds / a1.seconds:.2f}; b / tile-by-tile floor "
        f"{b.seconds / a2t.seconds:.2f})"
    )
    print(
        f"        in CPU seconds (the work, whatever the load): b/a {b.cpu / a2.cpu:.2f}, "
        f"tile-by-tile floor / a {a2t.cpu / a2.cpu:.2f}, b / tile-by-tile floor "
        f"{b.cpu / a2t.cpu:.2f}"
    )
    a_s = floors["as"][0] + floors["as"][1]
    a_sc = floors["asc"][0] + floors["asc"][1]
    print(
        f"  the loader's own floor: a'/a {a_s.seconds / a2.seconds:.2f} (CPU "
        f"{a_s.cpu / a2.cpu:.2f}); with the median composite {a_sc.seconds / a2.seconds:.2f} "
        f"(CPU {a_sc.cpu / a2.cpu:.2f}); b / (a' + composite) {b.seconds / a_sc.seconds:.2f} "
        f"(CPU {b.cpu / a_sc.cpu:.2f})"
    )
    if "c" in runs:
        c = runs["c"]
        print(
            f"  c/a {c.seconds / a2.seconds:6.2f}   aim <= {AIM_RATIO:g}: "
            f"{_verdict(c.seconds / a2.seconds <= AIM_RATIO)}   (months only "
            f"{c.months_seconds / a2m:.2f}; c/b {c.seconds / b.seconds:.2f})"
        )
    e = runs.get("e")
    worst = max(b.peak, e.peak if e else 0)
    verdicts["peak < 2 GiB"] = worst < AIM_PEAK
    print(
        f"  peak memory {b.peak / GIB:.2f} GiB ({n_months} months)"
        + (f", {e.peak / GIB:.2f} GiB ({n_long} months)" if e else "")
        + f"   aim < 2 GiB: {_verdict(verdicts['peak < 2 GiB'])}"
    )
    if e:
        growth = e.peak / b.peak - 1
        growth_m = e.peak_months / b.peak_months - 1
        verdicts["growth < 20 %"] = max(growth, growth_m) < AIM_GROWTH
        above = (e.peak - e.idle) / max(b.peak - b.idle, 1) - 1
        print(
            f"  peak growth for a 4x period {growth * 100:+.1f} % (months phase alone "
            f"{growth_m * 100:+.1f} %)   aim < +{AIM_GROWTH * 100:g} % (both): "
            f"{_verdict(verdicts['growth < 20 %'])}   (above the idle cluster: "
            f"{(b.peak - b.idle) / GIB:.2f} -> {(e.peak - e.idle) / GIB:.2f} GiB, "
            f"{above * 100:+.0f} %)"
        )
    if "d" in runs:
        d = runs["d"]
        speedup = d.seconds / b.seconds
        verdicts["speed-up >= 1.6"] = speedup >= AIM_SPEEDUP
        print(
            f"  speed-up 1 -> 2 workers {speedup:.2f}x   aim >= {AIM_SPEEDUP:g}x: "
            f"{_verdict(verdicts['speed-up >= 1.6'])}   (months only "
            f"{d.months_seconds / b.months_seconds:.2f}x; the floor's own "
            f"{a1.seconds / a2.seconds:.2f}x)"
        )
        if n_tiles < 2:
            print(
                "    (the site has 1 tile: a phase runs one unit at a time, whatever the workers)"
            )
    met = [k for k, v in verdicts.items() if v]
    missed = [k for k, v in verdicts.items() if not v]
    print(f"AIMS MET: {', '.join(met) or 'none'}; NOT MET: {', '.join(missed) or 'none'}")


if __name__ == "__main__":
    main()
