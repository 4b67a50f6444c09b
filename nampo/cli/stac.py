"""``nampo stac up|down|status|load|search``: the local STAC API (nampo.services.pgstac) and
searches of any catalog (nampo.io.catalog)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from nampo.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub) -> None:
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
    up.add_argument(
        "--serve-assets",
        action="store_true",
        help="serve each archive's COGs over HTTP from 127.0.0.1 (a cloud stand-in) and load "
        "its items with http:// hrefs, so runs read them as in the cloud",
    )
    up.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="with --serve-assets: ms per request"
    )
    up.add_argument(
        "--bandwidth-mbps", type=_positive, default=None, help="with --serve-assets: Mbit/s"
    )
    up.add_argument(
        "--error-share",
        type=_share,
        default=0.0,
        help="with --serve-assets: share of requests answered 503",
    )
    up.add_argument(
        "--drop-share",
        type=_share,
        default=0.0,
        help="with --serve-assets: share of connections dropped",
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


def _number(kind: str, ok, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    return _number("a number >= 0", lambda v: v >= 0, text)


def _positive(text: str) -> float:
    return _number("a number > 0", lambda v: v > 0, text)


def _share(text: str) -> float:
    return _number("a share in [0, 1)", lambda v: 0 <= v < 1, text)


def _stac_up(args, settings: Settings) -> int:
    from nampo.errors import NampoError
    from nampo.services import pgstac

    faults = None
    if args.serve_assets:
        from nampo.services.assets import Faults

        if not args.archive:
            raise NampoError("--serve-assets needs at least one --archive DIR to serve")
        try:
            faults = Faults(
                latency_ms=args.latency_ms,
                bandwidth_mbps=args.bandwidth_mbps,
                error_share=args.error_share,
                drop_share=args.drop_share,
            )
        except ValueError as exc:
            raise NampoError(str(exc)) from None
    elif any((args.latency_ms, args.bandwidth_mbps, args.error_share, args.drop_share)):
        raise NampoError(
            "--latency-ms, --bandwidth-mbps, --error-share and --drop-share need --serve-assets"
        )
    endpoint = pgstac.start(settings.stac_dir)
    print(f"STAC API at {endpoint.url} (PostgreSQL on 127.0.0.1:{endpoint.pg_port})")
    for archive in args.archive:
        if faults is None:
            print(f"loaded {pgstac.load(endpoint, archive)} items from {archive}")
            continue
        from nampo.services.assets.archive import write_served_archive
        from nampo.services.assets.background import start_serving

        served = start_serving(settings.stac_dir, archive, faults)
        out = write_served_archive(
            archive, settings.stac_dir / "served" / Path(archive).resolve().name, served.url_of
        )
        n = pgstac.load(endpoint, out)
        print(f"loaded {n} items from {archive}, their assets served at {served.url}")
    return 0


def _stac_load(args, settings: Settings) -> int:
    from nampo.services import pgstac

    endpoint = pgstac.read_endpoint(settings.stac_dir)
    for archive in args.archive:
        print(f"loaded {pgstac.load(endpoint, archive)} items from {archive}")
    return 0


def _stac_down(args, settings: Settings) -> int:
    from nampo.services import pgstac
    from nampo.services.assets.background import stop_serving

    if stop_serving(settings.stac_dir):
        print("stopped the asset servers")
    pgstac.stop(settings.stac_dir)
    print(f"stopped the local STAC API of {settings.stac_dir}")
    return 0


def _stac_status(args, settings: Settings) -> int:
    from nampo.services import pgstac
    from nampo.services.assets.background import running

    found = pgstac.status(settings.stac_dir)
    if found.running and found.endpoint is not None:
        print(
            f"running: STAC API at {found.endpoint.url}, "
            f"PostgreSQL on 127.0.0.1:{found.endpoint.pg_port}"
        )
        for served in running(settings.stac_dir):
            print(f"assets of {served.root} served at {served.url}")
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
