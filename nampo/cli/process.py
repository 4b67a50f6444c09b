"""``nampo process``: the pipeline over a period, on a Dask cluster. The run's inputs (the
period, the catalog, the store) are checked before the cluster starts."""

from __future__ import annotations

from pathlib import Path

from nampo.cli.common import DEFAULT_SCENARIO
from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_command"]


def add_command(sub) -> None:
    """`nampo process`: the pipeline over a period, on a Dask cluster."""
    proc = sub.add_parser(
        "process", help="compute monthly composites and change metrics of a site into its store"
    )
    proc.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
        help="the site, taken from a scenario file (default: Nampo)",
    )
    proc.add_argument(
        "--site",
        metavar="NAME",
        help="a site of the registry (`nampo site list`), instead of a scenario; its catalog "
        "profile and collection are the default",
    )
    proc.add_argument("--first", required=True, metavar="YYYY-MM", help="first month")
    proc.add_argument("--last", required=True, metavar="YYYY-MM", help="last month")
    proc.add_argument(
        "--store",
        required=True,
        metavar="URL",
        help="Zarr store: a path, file:// or s3:// (S3 settings: NAMPO_S3_*)",
    )
    proc.add_argument(
        "--catalog",
        default=None,
        help="catalog profile: local, earth-search, planetary-computer (default: the "
        "--site's, else local)",
    )
    proc.add_argument("--url", help="STAC API URL (default: the profile's, or the local API)")
    proc.add_argument("--max-cloud", type=float, default=None, metavar="PERCENT")
    proc.add_argument("--loader", choices=["stackstac", "odc"], default="stackstac")
    proc.add_argument(
        "--workers",
        type=int,
        default=2,
        help="local cluster worker processes (0: run in this process)",
    )
    proc.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (instead of a local cluster)",
    )
    proc.add_argument(
        "--outline",
        type=Path,
        metavar="GEOJSON",
        help="the site from its outline alone (lon/lat GeoJSON), instead of a scenario; "
        "needs --baseline",
    )
    proc.add_argument(
        "--baseline",
        metavar="YYYY-MM[..YYYY-MM]",
        help="first (and last) month of the baseline of an --outline site",
    )
    proc.add_argument(
        "--collection",
        help="collection to search instead of the catalog's Sentinel-2 L2A one "
        "(sentinel-2-l1c for scenes of `nampo import`)",
    )
    proc.add_argument("--tile-px", type=int, default=256)
    proc.add_argument("--force", action="store_true", help="recompute completed units")
    proc.add_argument(
        "--stale",
        choices=["recompute", "leave"],
        default="recompute",
        help="units written by an older product version: recompute (default) or leave",
    )
    proc.set_defaults(func=_process)


def _process(args, settings: Settings) -> int:
    from nampo.io.cube.reading import Reading
    from nampo.io.store import Store, StoreLocation
    from nampo.run.execute import execute
    from nampo.run.plan import CatalogSpec, plan_run, validate_period
    from nampo.run.units import parse_month
    from nampo.scenario.model import load_scenario
    from nampo.services import pgstac
    from nampo.sites import Site

    try:
        first, last = parse_month(args.first), parse_month(args.last)
    except ValueError as exc:
        raise NampoError(str(exc)) from None
    validate_period(first, last)  # before the catalog or its local API is asked anything
    catalog, collection, url = args.catalog or "local", args.collection, args.url
    if args.site is not None and args.outline is not None:
        raise NampoError("--site and --outline both name the site: give one")
    if args.site is not None:
        from nampo.sites.registry import Registry

        definition = Registry.from_settings(settings).get(args.site)
        site = definition.to_site()
        catalog = args.catalog or definition.catalog.profile
        collection = args.collection or definition.catalog.collection
        url = args.url or (definition.catalog.url if not args.catalog else None)
    elif args.outline is not None:
        site = _outline_site(args.outline, args.baseline, args.tile_px)
    else:
        site = Site.from_scenario(load_scenario(args.scenario), tile_px=args.tile_px)
    if catalog == "local" and url is None:
        url = pgstac.read_endpoint(settings.stac_dir).url
    spec = CatalogSpec(catalog, url, args.max_cloud, settings.catalog_timeout, collection)
    store = Store(StoreLocation.from_settings(args.store, settings))
    # period, catalog and store are checked (and the store created) before any cluster starts
    plan = plan_run(
        site, first, last, store=store, spec=spec, loader=args.loader, force=args.force,
        stale=args.stale, reading=Reading.from_settings(settings),
    )  # fmt: skip
    if plan.stale:
        what = "recomputed" if args.stale == "recompute" else "left as they are"
        print(f"{len(plan.stale)} units written by an older product version: {what}")

    def progress(r, done: int, total: int) -> None:
        note = f" ({r.error})" if r.error else ""
        extra = f", {r.scenes} scenes, {r.seconds:.1f} s" if r.status == "done" else ""
        print(f"  [{done:>4}/{total}] {r.unit_id:<20} {r.status}{extra}{note}", flush=True)

    with _dask_client(args) as client:
        if client is not None:
            workers = len(client.scheduler_info().get("workers", {}))
            print(f"Dask cluster at {client.scheduler.address} with {workers} workers")
        report = execute(plan, client=client, progress=progress)
    print(
        f"run {report.run_id}: {report.count('done')} units computed, "
        f"{report.count('skipped')} already complete, {report.count('failed')} failed; "
        f"store {store.url}"
    )
    return 1 if report.failed else 0


def _outline_site(path: Path, baseline: str | None, tile_px: int):
    import json

    from nampo.run.units import parse_month
    from nampo.sites import Site

    if baseline is None:
        raise NampoError("--outline needs --baseline YYYY-MM[..YYYY-MM]")
    try:
        first, _, last = baseline.partition("..")
        months = (parse_month(first), parse_month(last or first))
    except ValueError as exc:
        raise NampoError(f"--baseline {baseline!r}: {exc}") from None
    try:
        outline = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NampoError(f"cannot read the outline {path}: {exc}") from None
    return Site.from_outline(path.stem, outline, baseline=months, tile_px=tile_px)


def _dask_client(args):
    import contextlib

    if args.cluster:
        from distributed import Client

        return Client(args.cluster)
    if args.workers <= 0:
        return contextlib.nullcontext(None)
    from distributed import Client

    from nampo.run.cluster import local_cluster

    return Client(local_cluster(args.workers))
