"""``nampo score``: score a store's events (or an events file) against a scenario's truth
(nampo/evaluation/score.py)."""

from __future__ import annotations

from pathlib import Path

from nampo.cli.common import period_args
from nampo.cli.events import store_events
from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_command"]


def add_command(sub) -> None:
    sc = sub.add_parser("score", help="score a store's events against a scenario's truth")
    sc.add_argument("--archive", required=True, type=Path, help="the scenario archive (truth/)")
    what = sc.add_mutually_exclusive_group(required=True)
    what.add_argument("--store", metavar="URL", help="compute the events from this store")
    what.add_argument("--events", type=Path, metavar="FILE", help="events GeoJSON to score")
    period_args(sc)
    sc.add_argument("--min-area", type=float, default=2000.0, metavar="M2")
    sc.add_argument("--geojson", type=Path, metavar="FILE", help="write the events as GeoJSON")
    sc.add_argument("--json", action="store_true", help="print the score as JSON")
    sc.set_defaults(func=_score)


def _score(args, settings: Settings) -> int:
    import json

    from nampo.analysis.events import read_geojson, to_geojson
    from nampo.evaluation.score import score

    truth = args.archive / "truth" / "events.geojson"
    if not truth.is_file():
        raise NampoError(f"{args.archive} is not a scenario archive (no {truth.name} in truth/)")
    if args.store:
        _, found = store_events(args, settings, args.archive / "scenario.yaml")
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


def _activity_score(args, settings: Settings):
    """The vessel and ice errors of the store's activity series (None when the store has
    none: its units were computed before activity was stored)."""
    from nampo.evaluation.activity_score import score_activity
    from nampo.io.store import Store, StoreLocation

    docs = Store(StoreLocation.from_settings(args.store, settings)).activity()
    return score_activity(docs, args.archive) if docs else None
