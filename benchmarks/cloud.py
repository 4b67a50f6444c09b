"""Benchmark: one month of the pipeline reading its COGs from local disk and over HTTP,
side by side, on the Nampo archive.

The archive's files are served from 127.0.0.1 by the cloud stand-in
(``nampo.services.assets.AssetServer``) with 0, 20, 40 and 80 ms added to every request;
the STAC API holds the archive twice, once with local hrefs and once (collection
``sentinel-2-l2a-http``) with the server's URLs. Every row runs the same month with
``pipeline.process`` on a fresh local cluster of 2 worker processes (one thread each:
fresh workers, so every row opens its files, as a new run does), into a copy of one
store that already holds the site's baselines and the month before (what a monthly run
on an up-to-date store finds: each unit reads only its month's scenes).

Per row: wall time and its ratio to local disk, CPU seconds (this process, which also
runs the server, and the workers), and, over HTTP, requests (GET and HEAD) and bytes per
unit, and bytes read against the bytes of the COG blocks the units need (each unit's
month scenes x bands, the TIFF blocks its tile window touches, from the files' own
block offsets). Rows also tell whether the store is bit-identical to the local-disk row.

Extra rows at 40 ms: without the read-ahead of each file's blocks under the site (each
unit reads its own windows: fewer bytes, more requests), with one read thread and no
read-ahead (the reading before issue 17), and with 5 % of requests answered 503 and 1 %
of connections dropped.

Run (about 4 minutes on 2 quiet cores, the archive and baselines once more)::

    uv run python benchmarks/cloud.py                  # Nampo, 2018-03
    uv run python benchmarks/cloud.py --month 2017-10 --repeat 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from rasterio.windows import from_bounds

from nampo.io.cube import PREFETCH_MB, READ_THREADS, Reading
from nampo.io.scenes import NormalisedItem
from nampo.io.store import Store
from nampo.products.variables import COMPOSITE_BANDS
from nampo.run.cluster import local_cluster
from nampo.run.execute import process
from nampo.run.plan import CatalogSpec, find_scenes
from nampo.run.units import add_months, month_end, parse_month
from nampo.scenario.archive import build_archive
from nampo.services import pgstac
from nampo.services.assets import AssetServer, Faults
from nampo.services.assets.archive import write_served_archive
from nampo.settings import Settings
from nampo.sites import Site

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import Sampler  # noqa: E402 (the benchmarks share their sampler)

REPO = Path(__file__).resolve().parent.parent
BANDS = (*COMPOSITE_BANDS, "scl")
HTTP_COLLECTION = "sentinel-2-l2a-http"
MIB = 2**20

AIM_TIME = 1.5
"""At 40 ms a request, wall time at most this times the local-disk time."""
AIM_REQUESTS = 40
"""Requests per month unit at most."""
AIM_BYTES = 1.3
"""Bytes read at most this times the bytes of the blocks needed."""


@dataclass(frozen=True)
class Setting:
    label: str
    http: bool
    faults: Faults = Faults()
    read_threads: int | None = None
    """None: nampo's default (io.cube.READ_THREADS over HTTP); 1: one read at a time."""
    read_ahead: bool = True
    """False: no read-ahead (``Reading(read_ahead_mib=0)``): each unit reads its own
    windows."""


@dataclass
class Row:
    setting: Setting
    seconds: float
    cpu: float
    others_cores: float
    units: int
    failed: int
    requests: int = 0
    gets: int = 0
    heads: int = 0
    bytes: int = 0
    errors: int = 0
    drops: int = 0
    identical: bool | None = None


# --------------------------------------------------------------------------------------
# What the units need: the bytes of the COG blocks each unit's tile window touches


def block_bytes(path: str, bounds: tuple[float, float, float, float]) -> int:
    """Bytes of the TIFF blocks of `path` that the window over `bounds` touches."""
    with rasterio.open(path) as src:
        w = from_bounds(*bounds, transform=src.transform)
        col0, row0 = max(0, int(np.floor(w.col_off))), max(0, int(np.floor(w.row_off)))
        col1 = min(src.width, int(np.ceil(w.col_off + w.width)))
        row1 = min(src.height, int(np.ceil(w.row_off + w.height)))
        if col1 <= col0 or row1 <= row0:
            return 0
        bh, bw = src.block_shapes[0]
        total = 0
        for row in range(row0 // bh, (row1 - 1) // bh + 1):
            for col in range(col0 // bw, (col1 - 1) // bw + 1):
                size = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
                total += int(size or 0)
        return total


def needed(
    site: Site, scenes: Sequence[NormalisedItem], first: dt.date, last: dt.date
) -> tuple[int, int]:
    """Bytes of the COG blocks the period's month units need, and how many asset windows
    they read (the least number of requests: one per window)."""
    from nampo.io.cube.preflight import overlaps

    total = windows = 0
    for tile in site.tiles:
        grid = site.tile_grid(tile)
        for s in scenes:
            if not first <= s.datetime.date() <= month_end(last):
                continue
            if not overlaps(s, grid, BANDS):
                continue
            sizes = [block_bytes(s.bands[b].href, grid.bounds) for b in BANDS]
            total += sum(sizes)
            windows += sum(size > 0 for size in sizes)
    return total, windows


# --------------------------------------------------------------------------------------
# One row


def _prepare_worker() -> int:
    import nampo.io.cube  # noqa: F401 - imports before the clock starts
    import nampo.run.execute  # noqa: F401

    warnings.simplefilter("ignore")
    return os.getpid()


def run_row(
    setting: Setting,
    site: Site,
    period: tuple[dt.date, dt.date],
    template: Path,
    root: Path,
    spec: CatalogSpec,
    server: AssetServer,
) -> tuple[Row, Path]:
    from distributed import Client

    store_path = root / f"{setting.label.replace(' ', '_')}.zarr"
    shutil.rmtree(store_path, ignore_errors=True)
    shutil.copytree(template, store_path)
    with (
        local_cluster(2, silence_logs=logging.ERROR, local_directory=str(root / "dask")) as cl,
        Client(cl) as client,
    ):
        client.run(_prepare_worker)
        reading = Reading(
            read_threads=setting.read_threads or READ_THREADS,
            read_ahead_mib=PREFETCH_MB if setting.read_ahead else 0,
        )
        server.faults = setting.faults
        server.reset()
        with Sampler() as s:
            report = process(
                site, *period, store=Store(store_path), spec=spec, client=client, reading=reading
            )
        traffic = server.traffic()
        server.faults = Faults()
    row = Row(
        setting,
        s.seconds,
        s.cpu_seconds,
        s.others_cores,
        report.count("done"),
        report.count("failed"),
    )
    if setting.http:
        row.requests, row.gets, row.heads, row.bytes = (
            traffic.requests,
            traffic.gets,
            traffic.heads,
            traffic.bytes,
        )
        row.errors = traffic.statuses.get(503, 0)
        row.drops = traffic.statuses.get(0, 0)
    return row, store_path


def period_values(path: Path, first: dt.date, last: dt.date) -> xr.Dataset:
    ds = xr.open_zarr(path, consolidated=False)
    monthly = [v for v in ds.data_vars if "time" in ds[v].dims]
    span = slice(np.datetime64(first, "ns"), np.datetime64(last, "ns"))
    return ds[monthly].sel(time=span).load()


def same_values(a: xr.Dataset, b: xr.Dataset) -> bool:
    return set(a.data_vars) == set(b.data_vars) and all(
        np.array_equal(a[v].values, b[v].values, equal_nan=a[v].dtype.kind == "f")
        for v in a.data_vars
    )


# --------------------------------------------------------------------------------------
# Main


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description="Local disk vs HTTP (see the module doc).")
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "nampo.yaml")
    parser.add_argument("--archives", type=Path, default=None)
    parser.add_argument("--month", default="2018-03", metavar="YYYY-MM", help="first month")
    parser.add_argument("--months", type=int, default=1, help="months in the period")
    parser.add_argument("--latencies", default="0,20,40,80", help="ms per request, comma-separated")
    parser.add_argument(
        "--threads", default="", help="extra 40 ms rows with these read threads (e.g. 8,32)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds (fastest kept)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["before", "windows", "faults"],
        help="leave a row out",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    warnings.simplefilter("ignore")

    settings = Settings()
    archive = build_archive(args.scenario, args.archives or settings.archives_dir, workers=2)
    site = Site.from_scenario(archive.scenario)
    month = parse_month(args.month)

    home = Path(tempfile.mkdtemp(prefix="nampo-bench-cloud-"))
    try:
        endpoint = pgstac.start(home / "stac")
        with AssetServer(archive.path) as server:
            pgstac.load(endpoint, archive.path)
            served = write_served_archive(
                archive.path, home / "served", server.url_of, collection=HTTP_COLLECTION
            )
            pgstac.load(endpoint, served)
            _bench(args, archive, site, month, endpoint, server, home)
    finally:
        pgstac.stop(home / "stac")
        shutil.rmtree(home, ignore_errors=True)


def _bench(args, archive, site: Site, month: dt.date, endpoint, server, home: Path) -> None:
    from distributed import Client

    local = CatalogSpec("local", endpoint.url)
    http = CatalogSpec("local", endpoint.url, collection=HTTP_COLLECTION)
    last = add_months(month, args.months - 1)
    scenes = find_scenes(site, month, last, local)
    units = len(site.tiles) * args.months
    need, windows = needed(site, scenes, month, last)
    n_scenes = sum(month <= s.datetime.date() <= month_end(last) for s in scenes)
    print(
        f"scenario  {archive.scenario.name}: {len(site.tiles)} tiles of {site.tile_px} px; "
        f"period {month:%Y-%m}..{last:%Y-%m}: {n_scenes} scenes x {len(BANDS)} bands, "
        f"{units} units reading {windows / units:.1f} asset windows each; blocks needed "
        f"{need / MIB:.1f} MiB"
    )
    print(f"server    {server.url} (cloud stand-in), STAC API {endpoint.url}", flush=True)

    # The store every row starts from: baselines and the month before, computed once.
    template = home / "template.zarr"
    t0 = time.perf_counter()
    before = add_months(month, -1)
    with (
        local_cluster(2, silence_logs=logging.ERROR, local_directory=str(home / "dask")) as cl,
        Client(cl) as client,
    ):
        process(site, before, before, store=Store(template), spec=local, client=client)
    print(f"template  baselines + {before:%Y-%m} in {time.perf_counter() - t0:.0f} s\n", flush=True)

    latencies = [float(v) for v in args.latencies.split(",") if v.strip()]
    plan = [Setting("local disk", False)]
    plan += [Setting(f"http {ms:g} ms", True, Faults(latency_ms=ms)) for ms in latencies]
    if "windows" not in args.skip:
        plan.append(
            Setting("http 40 ms, no read-ahead", True, Faults(latency_ms=40), read_ahead=False)
        )
    if "before" not in args.skip:
        plan.append(
            Setting("http 40 ms, 1 thread, no read-ahead", True, Faults(latency_ms=40), 1, False)
        )
    for n in (int(v) for v in args.threads.split(",") if v.strip()):
        plan.append(Setting(f"http 40 ms, {n} read threads", True, Faults(latency_ms=40), n))
    if "faults" not in args.skip:
        plan.append(
            Setting(
                "http 40 ms, 5% 503, 1% drops",
                True,
                Faults(latency_ms=40, error_share=0.05, drop_share=0.01, seed=17),
            )
        )
    rows: dict[str, Row] = {}
    reference: xr.Dataset | None = None
    root = home / "runs"
    root.mkdir()
    for rep in range(args.repeat):
        order = plan if rep % 2 == 0 else plan[::-1]  # alternate: a burst of load hits both
        for setting in order:
            print(f"running {setting.label}" + (f" (round {rep + 1})" if rep else ""), flush=True)
            spec = http if setting.http else local
            row, path = run_row(setting, site, (month, last), template, root, spec, server)
            values = period_values(path, month, last)
            if reference is None and not setting.http:
                reference = values
            row.identical = None if reference is None else same_values(values, reference)
            shutil.rmtree(path, ignore_errors=True)
            print(f"  {row.seconds:.1f} s, {row.requests} requests", flush=True)
            best = rows.get(setting.label)
            if best is None or row.seconds < best.seconds:
                rows[setting.label] = row
    _table(rows, units, need, windows)


def _table(rows: dict[str, Row], units: int, need: int, windows: int) -> None:
    local = rows["local disk"].seconds
    print()
    print(
        f"{'reading from':<30} {'wall s':>7} {'x local':>8} {'CPU s':>6} {'req/unit':>9} "
        f"{'GET':>5} {'HEAD':>5} {'MiB/unit':>9} {'read/need':>10} {'503':>4} {'drop':>4} "
        f"{'identical':>9} {'others':>6}"
    )
    for label, r in rows.items():
        http = r.setting.http
        print(
            f"{label:<30} {r.seconds:7.1f} {r.seconds / local:8.2f} {r.cpu:6.1f} "
            f"{(f'{r.requests / units:.1f}' if http else '-'):>9} "
            f"{(r.gets if http else '-'):>5} {(r.heads if http else '-'):>5} "
            f"{(f'{r.bytes / units / MIB:.2f}' if http else '-'):>9} "
            f"{(f'{r.bytes / need:.2f}' if http else '-'):>10} "
            f"{(r.errors if http else '-'):>4} {(r.drops if http else '-'):>4} "
            f"{str(r.identical):>9} {r.others_cores:6.2f}"
            + (f"  {r.failed} units FAILED" if r.failed else "")
        )
    at40 = rows.get("http 40 ms")
    print()
    if at40 is not None:
        ratio = at40.seconds / local
        print(
            f"aim: at 40 ms <= {AIM_TIME}x local disk: {ratio:.2f}x "
            f"({'MET' if ratio <= AIM_TIME else 'NOT MET'})"
        )
        per_unit = at40.requests / units
        print(
            f"aim: <= {AIM_REQUESTS} requests per month unit: {per_unit:.1f} "
            f"({'MET' if per_unit <= AIM_REQUESTS else 'NOT MET'}); a unit reads "
            f"{windows / units:.1f} asset windows"
        )
        read = at40.bytes / need
        print(
            f"aim: bytes read <= {AIM_BYTES}x blocks needed: {read:.2f}x "
            f"({'MET' if read <= AIM_BYTES else 'NOT MET'})"
        )
    faulty = next((r for r in rows.values() if not r.setting.faults.clean), None)
    if faulty is not None:
        print(
            f"aim: 5% 503 + 1% drops, store bit-identical to local disk: {faulty.identical} "
            f"({faulty.errors} answers 503, {faulty.drops} connections dropped)"
        )
    print(
        "CPU s: this process (client, scheduler, nannies and the HTTP server) and the "
        "workers; 'others': cores used by other processes meanwhile (noise)."
    )


if __name__ == "__main__":
    main()
