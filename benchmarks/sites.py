"""Benchmark: the monitor over 1, 4 and 16 watched sites (issue 15), side by side in one run.

Every site is the size of the test ports (the test harbour's grid: 1.2 km x 1.2 km, four
tiles of 64 px, a 3-month baseline), registered under its own name with its own store, all
served by one local STAC API (the test harbour's archive, rendered or cached). For each
number of sites the monitoring flow (``flows.monitor_sites``, a real Prefect server on
loopback, one 2-process Dask cluster) runs twice over one month:

- **first run**: empty stores, so each site computes its baseline and the month (8 units);
  with one site at a time (``max_sites_at_once=1``) and with four at once;
- **again**: the same month with nothing new, so the run is nothing but each site's
  search, plan and child flow run: its wall time per site is the per-site overhead.

The same first run is also made by the library alone (``nampo.run.execute.process`` per
site, one after another, on the same cluster): the flow's wall time over it is Prefect's
share. Aims: per-site overhead under 2 s; 16 sites with four at once at least 1.6x faster
than one after another. Run:

    uv run python benchmarks/sites.py [--sites 1 4 16] [--home DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where benchmarks/flows.py would
# hide the `flows` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from flows import prefect_server  # noqa: E402
from nampo.run.cluster import local_cluster  # noqa: E402
from nampo.run.units import parse_month  # noqa: E402
from nampo.scenario.archive import build_archive  # noqa: E402
from nampo.scenario.known_sites import known_site  # noqa: E402
from nampo.services import pgstac  # noqa: E402
from nampo.settings import Settings  # noqa: E402
from nampo.sites.registry import Registry  # noqa: E402

MONTH = "2021-12"
TEMPLATE = "harbour-mini"
AIM_OVERHEAD_S = 2.0
AIM_SPEEDUP = 1.6


def register(registry: Registry, count: int) -> list[str]:
    """`count` sites the size of the test harbour, each under its own name."""
    base = known_site(TEMPLATE).definition
    names = [f"port-{i:02d}" for i in range(count)]
    for name in names:
        if name not in registry:
            registry.add(base.model_copy(update={"name": name, "title": f"Port {name}"}))
    return names


def flow_run(names: list[str], at_once: int, address: str, stores: Path) -> float:
    """Wall seconds of one monitoring run over `names`, stores under `stores`."""
    from flows.monitor_sites import monitor_sites

    os.environ["NAMPO_STORES"] = str(stores)
    t0 = time.perf_counter()
    state = monitor_sites(
        sites=names,
        through_month=MONTH,
        lookback_months=1,
        max_sites_at_once=at_once,
        cluster=address,
        return_state=True,
    )
    seconds = time.perf_counter() - t0
    if not state.is_completed():
        raise RuntimeError(f"the monitoring run failed: {state.message}")
    return seconds


def library_run(names: list[str], registry: Registry, client, spec, stores: Path) -> float:
    """Wall seconds of the same work by the library alone, one site after another."""
    from nampo.io.store import Store
    from nampo.run.execute import execute
    from nampo.run.plan import plan_run

    month = parse_month(MONTH)
    t0 = time.perf_counter()
    for name in names:
        site = registry.site(name)
        plan = plan_run(site, month, month, store=Store(stores / f"{name}.zarr"), spec=spec)
        report = execute(plan, client=client)
        if report.failed:
            raise RuntimeError(f"{name}: {report.failed[0].error}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--home", type=Path, help="keep the state here (default: temporary)")
    args = parser.parse_args()
    settings = Settings()
    home = args.home or Path(tempfile.mkdtemp(prefix="nampo-bench-sites-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # postgres traverses it
    rows = []
    with contextlib.ExitStack() as stack:
        if args.home is None:
            stack.callback(shutil.rmtree, home, True)
        archive = build_archive(known_site(TEMPLATE).scenario, settings.archives_dir)
        stack.callback(pgstac.stop, home / "stac")
        endpoint = pgstac.start(home / "stac")
        pgstac.load(endpoint, archive.path)
        server = stack.enter_context(prefect_server.running(home / "prefect"))
        os.environ.update(prefect_server.prefect_env(home / "prefect", server.api_url))
        os.environ["NAMPO_HOME"] = str(home)
        os.environ["NAMPO_SITES"] = str(home / "sites")
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
        cluster = stack.enter_context(local_cluster(2, silence_logs=logging.ERROR))
        from distributed import Client

        from nampo.run.plan import CatalogSpec

        client = stack.enter_context(Client(cluster))
        registry = Registry(home / "sites")
        spec = CatalogSpec("local", endpoint.url, None, settings.catalog_timeout)
        address = cluster.scheduler_address
        flow_run(register(registry, 1), 1, address, home / "warm")  # imports, first run
        for n in args.sites:
            names = register(registry, n)
            lib = library_run(names, registry, client, spec, home / f"lib-{n}")
            one = flow_run(names, 1, address, home / f"one-{n}")
            again = flow_run(names, 1, address, home / f"one-{n}")
            many = flow_run(names, 4, address, home / f"four-{n}") if n > 1 else one
            rows.append((n, lib, one, many, again))
            print(f"  {n} sites done", flush=True)
    print()
    print(f"monitor over N sites of the test harbour's size, one month ({MONTH}), 2 workers")
    print(
        f"{'sites':>5} {'library s':>10} {'flow, 1 at once':>16} {'flow, 4 at once':>16} "
        f"{'Prefect share':>14} {'speed-up 4/1':>13} {'nothing new, s/site':>20}"
    )
    for n, lib, one, many, again in rows:
        share = (one - lib) / one
        speedup = one / many
        per_site = again / n
        flag_o = "" if per_site <= AIM_OVERHEAD_S else " !"
        flag_s = "" if n == 1 or speedup >= AIM_SPEEDUP else " !"
        print(
            f"{n:>5} {lib:>10.1f} {one:>16.1f} {many:>16.1f} {share:>13.0%} "
            f"{speedup:>12.2f}{flag_s:<2} {per_site:>18.2f}{flag_o}"
        )
        print(f"{'':>5} per site: library {lib / n:.1f} s, flow {one / n:.1f} s / {many / n:.1f} s")
    print(
        f"aims: nothing new (search, plan, child run) under {AIM_OVERHEAD_S:g} s per site; "
        f"16 sites four at once at least {AIM_SPEEDUP:g}x faster than one after another "
        "('!' marks a miss)"
    )


if __name__ == "__main__":
    main()
