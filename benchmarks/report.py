"""Benchmark: the time to write a site's report (`nampo report`) from a processed store.

Reads the store in place (nothing is copied or written to it) and writes the report into
a temporary folder, then prints the wall-clock and CPU seconds of each stage: reading the
store (coverage, composites, the change dating behind the events, facility series),
drawing the pictures, and the COG exports. Aim: under 20 s for the Nampo site on 2 cores.

    uv run python benchmarks/report.py --store ~/.nampo/stores/nampo.zarr
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from nampo.io.store import Store
from nampo.report import build_report
from nampo.scenario.known_sites import change_params, scenario_archive, site_for, truth_score
from nampo.settings import Settings

AIM_S = 20.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(Path.home() / ".nampo" / "stores" / "nampo.zarr"))
    args = ap.parse_args()
    store = Store(args.store)
    site = site_for(store)
    score = truth_score(scenario_archive(site.name, Settings().archives_dir))
    print(f"store {store.url} (read in place), site {site.name}, {os.cpu_count()} cores")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="nampo-report-bench-") as tmp:
        t0 = time.perf_counter()
        report = build_report(
            store, Path(tmp) / "report", site, change=change_params(site.name), score=score
        )
        wall = time.perf_counter() - t0
        images = sum(1 for _ in (Path(tmp) / "report").rglob("*.png"))
    d = report.data
    print(
        f"{len(d.coverage.months)} months, {len(d.events)} events, {len(d.facilities)} "
        f"facilities, {images} images, score: {'yes' if d.score else 'no'}"
    )
    print(f"{'stage':<8s} {'wall s':>7s} {'CPU s':>7s}")
    for stage in ("read", "draw", "export", "total"):
        print(f"{stage:<8s} {report.seconds[stage]:7.1f} {report.cpu[stage]:7.1f}")
    ev_wall, ev_cpu = d.events_seconds
    print(f"  of which the events and their change map: {ev_wall:.1f} s, {ev_cpu:.1f} CPU s")
    print(f"  events: {d.events_source}")
    cpu = report.cpu["total"]  # with the drawing processes' (not children of this one)
    print(f"CPU seconds {cpu:.1f} (wall {wall:.1f} s: {cpu / wall:.2f} cores busy on average)")
    floor = cpu / 2
    print(f"on 2 idle cores, perfectly shared, this CPU time would take {floor:.1f} s")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"aim: under {AIM_S:.0f} s on 2 cores: {'met' if wall < AIM_S else 'NOT met'}")


if __name__ == "__main__":
    main()
