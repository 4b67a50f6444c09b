"""``nampo store``: what a store holds against today's product."""

from __future__ import annotations

import json

from nampo.cli.common import period_args
from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub) -> None:
    store = sub.add_parser("store", help="what a store holds")
    cmds = store.add_subparsers(dest="store_command", required=True)
    status = cmds.add_parser(
        "status", help="units complete, stale (older product version) and missing"
    )
    status.add_argument("url", metavar="URL", help="the store: a path, file:// or s3://")
    period_args(status)
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(func=_status)


def _status(args, settings: Settings) -> int:
    from nampo.io.store import Store, StoreLocation
    from nampo.run.status import store_status
    from nampo.run.units import parse_month

    store = Store(StoreLocation.from_settings(args.url, settings))
    if not store.exists():
        raise NampoError(f"no store at {store.url}")
    try:
        first = parse_month(args.first) if args.first else None
        last = parse_month(args.last) if args.last else None
    except ValueError as exc:
        raise NampoError(str(exc)) from None
    status = store_status(store, first, last)
    print(json.dumps(status.to_dict(), indent=1) if args.json else status.format())
    return 0
