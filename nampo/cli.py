"""The ``nampo`` command line. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from nampo.errors import NampoError
from nampo.settings import Settings


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nampo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_scenario_commands(sub)
    _add_stac_commands(sub)
    _add_process_command(sub)
    _add_change_commands(sub)
    _add_report_command(sub)
    _add_import_command(sub)
    return parser


DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "nampo.yaml"


def _add_scenario_commands(sub) -> None:
    """`nampo scenario validate|build` (the main job is `nampo-flows demo`)."""
    scen = sub.add_parser("scenario", help="scenario files and their rendered archives")
    cmds = scen.add_subparsers(dest="scenario_command", required=True)

    val = cmds.add_parser("validate", help="check a scenario file and summarise it")
    val.add_argument("file", type=Path)
    val.set_defaults(func=_scenario_validate)

    build = cmds.add_parser("build", help="render a scenario's archive (cached)")
    build.add_argument("file", type=Path)
    build.add_argument(
        "--workers",
        type=int,
        default=None,
        help="render processes (default: NAMPO_RENDER_WORKERS or one per core)",
    )
    build.set_defaults(func=_scenario_build)


def _scenario_validate(args, settings: Settings) -> int:
    from nampo.scenario.model import load_scenario
    from nampo.scenario.schedule import datatakes

    sc = load_scenario(args.file)
    g = sc.site_grid
    takes = datatakes(sc)
    print(f"{args.file}: valid scenario {sc.name!r} ({sc.title})")
    print(
        f"  grid   EPSG:{g.epsg}, {g.width} x {g.height} px at {g.resolution:g} m, "
        f"bounds {tuple(round(v) for v in g.bounds)}"
    )
    print(f"  period {sc.period.start} .. {sc.period.end}: {len(takes)} datatakes")
    print(
        f"  {len(sc.landcover.areas)} land-cover areas, {len(sc.facilities)} facilities, "
        f"{len(sc.events)} events"
    )
    return 0


def _build(path: Path, settings: Settings, workers: int | None):
    from nampo.scenario.archive import build_archive

    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:  # one line, updated in place
            end = "\n" if done == total else ""
            print(
                f"\r    rendering datatakes: {done}/{total}", end=end, file=sys.stderr, flush=True
            )
        elif done == total or done % 25 == 0:
            print(f"    rendering datatakes: {done}/{total}", file=sys.stderr, flush=True)

    n = settings.render_workers if workers is None else workers
    return build_archive(path, settings.archives_dir, workers=n, progress=progress)


def _scenario_build(args, settings: Settings) -> int:
    archive = _build(args.file, settings, args.workers)
    m = archive.manifest()
    state = "built" if archive.built else "already built (cached)"
    print(
        f"{archive.path}: {state}: {m['items']} items from {m['datatakes']} datatakes, "
        f"{m['bytes'] / 2**20:,.0f} MiB"
    )
    return 0


def _add_process_command(sub) -> None:
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
        default="local",
        help="catalog profile: local, earth-search, planetary-computer",
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
    proc.set_defaults(func=_process)


def _process(args, settings: Settings) -> int:
    from nampo.io.store import Store, StoreLocation
    from nampo.run.execute import process
    from nampo.run.plan import CatalogSpec, validate_period
    from nampo.run.units import parse_month
    from nampo.scenario.model import load_scenario
    from nampo.services import pgstac
    from nampo.sites import Site

    try:
        first, last = parse_month(args.first), parse_month(args.last)
    except ValueError as exc:
        raise NampoError(str(exc)) from None
    if args.outline is not None:
        site = _outline_site(args.outline, args.baseline, args.tile_px)
    else:
        site = Site.from_scenario(load_scenario(args.scenario), tile_px=args.tile_px)
    url = args.url
    if args.catalog == "local" and url is None:
        url = pgstac.read_endpoint(settings.stac_dir).url
    spec = CatalogSpec(args.catalog, url, args.max_cloud, settings.catalog_timeout, args.collection)
    store = Store(StoreLocation.from_settings(args.store, settings))
    validate_period(first, last)

    def progress(r, done: int, total: int) -> None:
        note = f" ({r.error})" if r.error else ""
        extra = f", {r.scenes} scenes, {r.seconds:.1f} s" if r.status == "done" else ""
        print(f"  [{done:>4}/{total}] {r.unit_id:<20} {r.status}{extra}{note}", flush=True)

    with _dask_client(args) as client:
        if client is not None:
            workers = len(client.scheduler_info().get("workers", {}))
            print(f"Dask cluster at {client.scheduler.address} with {workers} workers")
        report = process(
            site,
            first,
            last,
            store=store,
            spec=spec,
            client=client,
            loader=args.loader,
            force=args.force,
            progress=progress,
        )
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


def _add_stac_commands(sub) -> None:
    """`nampo stac up|down|status|load|search` (owned by nampo.services)."""
    stac = sub.add_parser("stac", help="the local STAC API (PostgreSQL + pgstac)")
    cmds = stac.add_subparsers(dest="stac_command", required=True)

    up = cmds.add_parser("up", help="start the local STAC API and load archives into it")
    up.add_argument(
        "--archive",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="archive folder with collection.json and items.ndjson (repeatable)",
    )
    up.set_defaults(func=_stac_up)

    load = cmds.add_parser("load", help="load archives into the running local STAC API")
    load.add_argument("archive", type=Path, nargs="+", metavar="DIR")
    load.set_defaults(func=_stac_load)

    cmds.add_parser("down", help="stop the local STAC API").set_defaults(func=_stac_down)
    cmds.add_parser("status", help="is the local STAC API running?").set_defaults(func=_stac_status)

    find = cmds.add_parser("search", help="search a STAC API and list the items found")
    find.add_argument(
        "--catalog",
        default="local",
        help="catalog profile: local, earth-search, planetary-computer",
    )
    find.add_argument(
        "--url", help="STAC API root URL (default: the profile's, or the running local API)"
    )
    find.add_argument(
        "--bbox",
        type=_bbox,
        required=True,
        metavar="W,S,E,N",
        help="area of interest in degrees (lon/lat)",
    )
    find.add_argument("--start", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    find.add_argument("--end", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    find.add_argument("--max-cloud", type=float, default=None, metavar="PERCENT")
    find.set_defaults(func=_stac_search)


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected W,S,E,N in degrees, got {text!r}") from None
    if west >= east or south >= north:
        raise argparse.ArgumentTypeError(f"bbox {text!r} is empty (need W<E and S<N)")
    return west, south, east, north


def _stac_up(args, settings: Settings) -> int:
    from nampo.services import pgstac

    endpoint = pgstac.start(settings.stac_dir)
    print(f"STAC API at {endpoint.url} (PostgreSQL on 127.0.0.1:{endpoint.pg_port})")
    for archive in args.archive:
        print(f"loaded {pgstac.load(endpoint, archive)} items from {archive}")
    return 0


def _stac_load(args, settings: Settings) -> int:
    from nampo.services import pgstac

    endpoint = pgstac.read_endpoint(settings.stac_dir)
    for archive in args.archive:
        print(f"loaded {pgstac.load(endpoint, archive)} items from {archive}")
    return 0


def _stac_down(args, settings: Settings) -> int:
    from nampo.services import pgstac

    pgstac.stop(settings.stac_dir)
    print(f"stopped the local STAC API of {settings.stac_dir}")
    return 0


def _stac_status(args, settings: Settings) -> int:
    from nampo.services import pgstac

    found = pgstac.status(settings.stac_dir)
    if found.running and found.endpoint is not None:
        print(
            f"running: STAC API at {found.endpoint.url}, "
            f"PostgreSQL on 127.0.0.1:{found.endpoint.pg_port}"
        )
        return 0
    print(
        f"not running (PostgreSQL: {'up' if found.postgres else 'down'}, "
        f"API: {'up' if found.api else 'down'}; state in {settings.stac_dir})"
    )
    return 1


def _stac_search(args, settings: Settings) -> int:
    from shapely.geometry import box

    from nampo.io import catalog
    from nampo.services import pgstac

    url = args.url
    if url is None and args.catalog == "local":
        url = pgstac.read_endpoint(settings.stac_dir).url
    items = catalog.search(
        args.catalog, url, box(*args.bbox), args.start, args.end, args.max_cloud, sign=False
    )
    print(f"{'id':<36} {'datetime':<20} {'cloud':>6}")
    for item in items:
        props = item["properties"]
        cloud = props.get("eo:cloud_cover")
        print(
            f"{item['id']:<36} {props.get('datetime', '')[:19]:<20} "
            f"{'' if cloud is None else f'{cloud:6.1f}':>6}"
        )
    print(f"{len(items)} items")
    return 0


# -- change: `nampo events` and `nampo score` (nampo/analysis/dating.py, events.py, score.py) ------


def _add_change_commands(sub) -> None:
    ev = sub.add_parser("events", help="date the lasting changes of a store and list its events")
    ev.add_argument("--store", required=True, metavar="URL", help="the site's Zarr store")
    ev.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
        help="scenario file giving the site's facilities (default: Nampo)",
    )
    _period_args(ev)
    ev.add_argument("--geojson", type=Path, metavar="FILE", help="write the events as GeoJSON")
    ev.add_argument("--parquet", type=Path, metavar="FILE", help="write the events as GeoParquet")
    ev.add_argument(
        "--no-save",
        action="store_true",
        help="do not store the events in the store (nampo/events/, see docs/store.md)",
    )
    ev.set_defaults(func=_events)

    sc = sub.add_parser("score", help="score a store's events against a scenario's truth")
    sc.add_argument("--archive", required=True, type=Path, help="the scenario archive (truth/)")
    what = sc.add_mutually_exclusive_group(required=True)
    what.add_argument("--store", metavar="URL", help="compute the events from this store")
    what.add_argument("--events", type=Path, metavar="FILE", help="events GeoJSON to score")
    _period_args(sc)
    sc.add_argument("--min-area", type=float, default=2000.0, metavar="M2")
    sc.add_argument("--geojson", type=Path, metavar="FILE", help="write the events as GeoJSON")
    sc.add_argument("--json", action="store_true", help="print the score as JSON")
    sc.set_defaults(func=_score)


def _period_args(p) -> None:
    p.add_argument("--first", metavar="YYYY-MM", help="first month (default: the store's)")
    p.add_argument("--last", metavar="YYYY-MM", help="last month (default: the store's)")


def _store_events(args, settings: Settings, scenario: Path):
    from nampo.analysis.events import site_events
    from nampo.io.store import Store, StoreLocation
    from nampo.run.units import parse_month
    from nampo.scenario.known_sites import change_params
    from nampo.scenario.model import load_scenario

    try:
        first = parse_month(args.first) if args.first else None
        last = parse_month(args.last) if args.last else None
    except ValueError as exc:
        raise NampoError(str(exc)) from None
    facilities = [
        (f.name, f.title, _polygon(f.polygon)) for f in load_scenario(scenario).facilities
    ]
    store = Store(StoreLocation.from_settings(args.store, settings))
    if not store.exists():
        raise NampoError(f"no nampo store at {store.url}")
    # the site's seasons (when water freezes, when vegetation is green) are its climate
    _, events = site_events(store, first, last, facilities, change_params(store.site.name))
    return store, events


def _polygon(coords):
    from shapely.geometry import Polygon

    return Polygon(coords)


def _events(args, settings: Settings) -> int:
    from nampo.analysis.events import save_events, summary, to_geojson, to_geoparquet

    store, events = _store_events(args, settings, args.scenario)
    print(summary(events) or "no lasting change found")
    if not args.no_save:
        for url in save_events(store, events):
            print(f"{len(events)} events stored: {url}")
    if args.geojson:
        to_geojson(events, args.geojson)
        print(f"{len(events)} events written to {args.geojson}")
    if args.parquet:
        to_geoparquet(events, args.parquet)
        print(f"{len(events)} events written to {args.parquet}")
    return 0


def _score(args, settings: Settings) -> int:
    import json

    from nampo.analysis.events import read_geojson, to_geojson
    from nampo.evaluation.score import score

    truth = args.archive / "truth" / "events.geojson"
    if not truth.is_file():
        raise NampoError(f"{args.archive} is not a scenario archive (no {truth.name} in truth/)")
    if args.store:
        _, found = _store_events(args, settings, args.archive / "scenario.yaml")
        events = [{**e.properties(), "geometry": e.geometry} for e in found]
        if args.geojson:
            to_geojson(found, args.geojson)
    else:
        if not args.events.is_file():
            raise NampoError(f"no events file {args.events}")
        events = read_geojson(args.events)
    result = score(events, args.archive, min_area=args.min_area)
    activity = _activity_score(args, settings) if args.store else None
    if args.json:
        out = result.to_dict()
        if args.store:
            out["activity"] = activity.to_dict() if activity is not None else None
        print(json.dumps(out, indent=1))
    else:
        print(result.format())
        if activity is not None:
            print()
            print(activity.format())
        elif args.store:
            print(
                "\nno activity series in the store: its units were computed before activity "
                "was stored (recompute them: nampo process --force)"
            )
    return 0


# -- report: `nampo report` (nampo/report) --------------------------------------------------


def _add_report_command(sub) -> None:
    rep = sub.add_parser(
        "report", help="write a site's report (index.html, maps, series, COGs) from its store"
    )
    rep.add_argument("--store", required=True, metavar="URL", help="the site's Zarr store")
    rep.add_argument(
        "--out", type=Path, metavar="DIR", help="report folder (default: <store name>-report)"
    )
    rep.add_argument(
        "--scenario",
        type=Path,
        help="scenario file giving the site's facilities (default: the store's known site)",
    )
    rep.add_argument(
        "--archive",
        type=Path,
        help="scenario archive to score the events against (default: the known site's, "
        "when it has been rendered)",
    )
    rep.set_defaults(func=_report)


def _report(args, settings: Settings) -> int:
    from nampo.io.store import Store, StoreLocation
    from nampo.report import build_report, scenario_archive, site_for

    store = Store(StoreLocation.from_settings(args.store, settings))
    if not store.exists():
        raise NampoError(f"no nampo store at {store.url}")
    site = site_for(store, args.scenario)
    archive = args.archive or scenario_archive(site.name, settings.archives_dir)
    out = args.out or Path(f"{Path(store.url.rstrip('/')).stem}-report")
    report = build_report(store, out, site, archive)
    for note in report.data.notes:
        print(f"note: {note}")
    print(f"{len(report.data.events)} events; report written in {report.seconds['total']:.1f} s")
    print(report.index)


def _activity_score(args, settings: Settings):
    """The vessel and ice errors of the store's activity series (None when the store has
    none: its units were computed before activity was stored)."""
    from nampo.evaluation.score import score_activity
    from nampo.io.store import Store, StoreLocation

    docs = Store(StoreLocation.from_settings(args.store, settings)).activity()
    return score_activity(docs, args.archive) if docs else None


# -- import: `nampo import` (nampo/io/importer.py) -------------------------------------------


def _add_import_command(sub) -> None:
    imp = sub.add_parser(
        "import",
        help="turn folders of GeoTIFFs of a site into COGs and STAC items "
        "(Earth Search sentinel-2-l1c shape) and load them into the local STAC API",
    )
    imp.add_argument("name", help="the site's name (item ids and the archive folder)")
    imp.add_argument(
        "--scene",
        action="append",
        required=True,
        metavar="DIR=YYYY-MM-DD",
        help="a folder of one scene's band files (..._B04.tif) and its acquisition date "
        "(repeatable)",
    )
    imp.add_argument(
        "--out", type=Path, metavar="DIR", help="archive folder (default: $NAMPO_HOME/imports/NAME)"
    )
    imp.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="reflectance offset of the DNs: 0 before processing baseline 04.00 "
        "(2022-01-25), -0.1 after",
    )
    imp.add_argument("--collection", default="sentinel-2-l1c")
    imp.add_argument(
        "--no-load", action="store_true", help="write the archive only (load it later)"
    )
    imp.set_defaults(func=_import)


def _import(args, settings: Settings) -> int:
    from datetime import UTC, datetime

    from nampo.io.importer import SceneFiles, import_scenes
    from nampo.services import pgstac

    scenes = []
    for text in args.scene:
        folder, sep, day = text.rpartition("=")
        try:
            when = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
        except ValueError:
            raise NampoError(f"--scene {text!r}: expected DIR=YYYY-MM-DD") from None
        if not sep:
            raise NampoError(f"--scene {text!r}: expected DIR=YYYY-MM-DD")
        scenes.append(SceneFiles(Path(folder), when))
    out = args.out or settings.home / "imports" / args.name
    endpoint = None if args.no_load else pgstac.read_endpoint(settings.stac_dir)
    archive = import_scenes(args.name, scenes, out, collection=args.collection, offset=args.offset)
    print(f"{archive.path}: {len(archive.items)} items")
    for item in archive.items:
        print(f"  {item['id']}  {item['properties']['datetime']}  {len(item['assets'])} bands")
    if endpoint is not None:
        print(f"loaded {pgstac.load(endpoint, archive.path)} items into {endpoint.url}")
    return 0


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Run a parsed command with the settings read here, once: errors are one line
    (``prog: error: ...``, exit 2), Ctrl-C exits 130."""
    try:
        return int(args.func(args, Settings()) or 0)
    except NampoError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run_command("nampo", _build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
