"""``nampo events``: date the lasting changes of a store (nampo/analysis/dating/,
events.py) and list, store and export its events."""

from __future__ import annotations

from pathlib import Path

from nampo.cli.common import DEFAULT_SCENARIO, period_args
from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_command", "store_events"]


def add_command(sub) -> None:
    ev = sub.add_parser("events", help="date the lasting changes of a store and list its events")
    ev.add_argument("--store", required=True, metavar="URL", help="the site's Zarr store")
    ev.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
        help="scenario file giving the site's facilities (default: Nampo)",
    )
    period_args(ev)
    ev.add_argument("--geojson", type=Path, metavar="FILE", help="write the events as GeoJSON")
    ev.add_argument("--parquet", type=Path, metavar="FILE", help="write the events as GeoParquet")
    ev.add_argument(
        "--no-save",
        action="store_true",
        help="do not store the events in the store (nampo/events/, see docs/store.md)",
    )
    ev.set_defaults(func=_events)


def store_events(args, settings: Settings, scenario: Path):
    """The store of ``--store`` and its events over ``--first``..``--last``, dated with the
    facilities of `scenario`."""
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

    store, events = store_events(args, settings, args.scenario)
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
