"""Benchmark: build the Nampo scenario archive cold, then again from the cache.

Prints the archive's size (datatakes, items, pixels, bytes), the wall time and peak memory
(all render processes together, sampled) of the cold build, and the cached rebuild time,
each beside its aim. Run: `uv run python benchmarks/archive_build.py [--scenario FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from nampo.scenario.archive import build_archive

REPO = Path(__file__).resolve().parent.parent


class PeakMemory:
    """Samples the resident memory of this process and its children every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "nampo.yaml")
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nampo-bench-"))
    try:
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            archive = build_archive(args.scenario, root, workers=args.workers)
            cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = build_archive(args.scenario, root, workers=args.workers)
        cached = time.perf_counter() - t0
        assert not again.built

        m = archive.manifest()
        items = [json.loads(x) for x in archive.items_path.read_text().splitlines()]
        pixels = sum(
            a["proj:shape"][0] * a["proj:shape"][1] * (3 if k == "visual" else 1)
            for it in items
            for k, a in it["assets"].items()
        )
        grid = archive.scenario.site_grid
        km = grid.width * grid.resolution / 1000, grid.height * grid.resolution / 1000
        cores = os.cpu_count()
        print(
            f"scenario          {archive.scenario.name}: {km[0]:g} km x {km[1]:g} km at "
            f"{grid.resolution:g} m, {m['period'][0]} .. {m['period'][1]}"
        )
        print(f"datatakes         {m['datatakes']}")
        print(f"items             {m['items']} ({len(items[0]['assets'])} COGs each)")
        print(f"pixels written    {pixels / 1e9:.2f} Gpx")
        print(f"bytes on disk     {m['bytes'] / 2**30:.2f} GiB")
        print(
            f"cold build        {cold:7.1f} s   aim < 180 s on 2 cores  "
            f"(ratio {cold / 180:.2f}; {cores} cores here)"
        )
        print(f"throughput        {pixels / cold / 1e6:7.1f} Mpx/s written")
        print(f"peak memory       {mem.peak / 2**30:7.2f} GiB (all processes)")
        print(f"cached rebuild    {cached:7.3f} s   aim < 2 s (ratio {cached / 2:.3f})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
