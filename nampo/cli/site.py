"""``nampo site``: the registry of watched sites (``docs/sites.md``): add, list, show,
validate and remove. The registry is the one the settings name (``NAMPO_SITES``)."""

from __future__ import annotations

import json
from pathlib import Path

from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub) -> None:
    site = sub.add_parser("site", help="the registry of watched sites")
    cmds = site.add_subparsers(dest="site_command", required=True)

    add = cmds.add_parser("add", help="register a site from its outline (or a definition file)")
    add.add_argument("name", nargs="?", help="short name: lower-case letters, digits, - and _")
    add.add_argument("--outline", type=Path, metavar="GEOJSON", help="the site's polygon, lon/lat")
    add.add_argument(
        "--facilities", type=Path, metavar="GEOJSON", help="named polygons with a kind"
    )
    add.add_argument("--title", help="name for people (default: the short name)")
    add.add_argument("--baseline", metavar="YYYY-MM[..YYYY-MM]", help="baseline months")
    add.add_argument("--tile-px", type=int, default=None, help="tile side in pixels (256)")
    add.add_argument("--catalog", choices=["local", "earth-search", "planetary-computer"])
    add.add_argument("--collection", help="collection to search (default: the profile's L2A)")
    add.add_argument("--ice-months", metavar="M,M", help="months the water may freeze ('' none)")
    add.add_argument("--growing-months", metavar="M,M", help="months vegetation is green")
    add.add_argument("--file", type=Path, help="a whole site definition (YAML or JSON) instead")
    add.add_argument("--replace", action="store_true", help="replace an entry of that name")
    add.set_defaults(func=_add)

    ls = cmds.add_parser("list", help="the registered sites")
    ls.set_defaults(func=_list)

    show = cmds.add_parser("show", help="a site's grid, tiles, climate, store and last run")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="the entry as JSON")
    show.set_defaults(func=_show)

    val = cmds.add_parser("validate", help="check a site definition file (nothing is written)")
    val.add_argument("file", type=Path)
    val.set_defaults(func=_validate)

    rm = cmds.add_parser("remove", help="unregister a site (its store is kept)")
    rm.add_argument("name")
    rm.set_defaults(func=_remove)


def _registry(settings: Settings):
    from nampo.sites.registry import Registry

    return Registry.from_settings(settings)


def _months(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(m) for m in text.split(",") if m.strip()]
    except ValueError:
        raise NampoError(f"{flag} {text!r}: expected months as numbers, e.g. 12,1,2,3") from None


def _geojson(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise NampoError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise NampoError(f"{path}: not JSON: {exc}") from None


def _definition(args):
    from nampo.sites.geojson import definition_from_geojson
    from nampo.sites.registry import load_definition

    if args.file is not None:
        if args.outline or args.facilities:
            raise NampoError("--file is a whole definition: without --outline or --facilities")
        definition = load_definition(args.file)
        if args.name and args.name != definition.name:
            raise NampoError(f"{args.file} defines {definition.name!r}, not {args.name!r}")
        return definition
    if not args.name or args.outline is None:
        raise NampoError("site add needs NAME and --outline GEOJSON (or --file DEFINITION)")
    if args.baseline is None:
        raise NampoError(
            "site add needs --baseline YYYY-MM[..YYYY-MM]: the months change is measured against"
        )
    first, _, last = args.baseline.partition("..")
    catalog = {k: v for k, v in (("profile", args.catalog), ("collection", args.collection)) if v}
    climate = {
        k: v
        for k, v in (
            ("ice_months", _months(args.ice_months, "--ice-months")),
            ("growing_months", _months(args.growing_months, "--growing-months")),
        )
        if v is not None
    }
    return definition_from_geojson(
        args.name,
        _geojson(args.outline, "outline"),
        baseline=(first, last or first),
        facilities=_geojson(args.facilities, "facilities") if args.facilities else None,
        title=args.title,
        tile_px=args.tile_px,
        catalog=catalog,
        climate=climate,
        source=f"site {args.name}",
    )


def _add(args, settings: Settings) -> int:
    definition = _definition(args)  # every check before anything is written
    registry = _registry(settings)
    url = registry.add(definition, replace=args.replace)
    site = definition.to_site()
    g = site.grid
    print(f"registered {definition.name!r} in {url}")
    print(f"  grid EPSG:{g.epsg}, {g.width} x {g.height} px, {len(site.tiles)} tiles")
    print(f"  {site.seasons.describe()}")
    print(f"  backfill: nampo process --site {definition.name} --first YYYY-MM --last YYYY-MM")
    return 0


def _list(args, settings: Settings) -> int:
    from nampo.sites import SiteError

    registry = _registry(settings)
    names = registry.names()
    if not names:
        print(f"no sites in {registry.url} (add one with `nampo site add`)")
        return 0
    print(f"{len(names)} sites in {registry.url}")
    for name in names:
        try:
            d = registry.get(name)
            g = d.site_grid()
            km = f"{g.width * g.resolution / 1000:.1f} x {g.height * g.resolution / 1000:.1f} km"
            print(f"  {name:<20} {km:<16} {len(d.facilities):>3} facilities  {d.title or ''}")
        except SiteError as exc:
            print(f"  {name:<20} BROKEN: {exc}")
    return 0


def _show(args, settings: Settings) -> int:
    registry = _registry(settings)
    definition = registry.get(args.name)
    if args.json:
        print(json.dumps(definition.to_document(), indent=1))
        return 0
    site = definition.to_site()
    g = site.grid
    first, last = site.baseline or (None, None)
    print(f"{site.name}: {site.title}")
    print(
        f"  grid      EPSG:{g.epsg}, {g.resolution:g} m, origin ({g.x0:.0f}, {g.y0:.0f}), "
        f"{g.width} x {g.height} px ({g.width * g.resolution / 1000:.1f} x "
        f"{g.height * g.resolution / 1000:.1f} km)"
    )
    ids = ", ".join(t.id for t in site.tiles[:8]) + (" ..." if len(site.tiles) > 8 else "")
    print(f"  tiles     {len(site.tiles)} of {site.tile_px} px: {ids}")
    print(f"  baseline  {first:%Y-%m}..{last:%Y-%m}" if first and last else "  baseline  none")
    print(f"  climate   {site.seasons.describe()}")
    cat = definition.catalog
    print(f"  catalog   {cat.profile}{', collection ' + cat.collection if cat.collection else ''}")
    for f in definition.facilities:
        berths = f", {len(f.berths)} berths" if f.berths else ""
        print(f"  facility  {f.name} ({f.kind}{berths}): {f.title}")
    url = settings.store_url(site.name)
    print(f"  store     {url}")
    print(f"  last run  {_last_run(url, settings)}")
    return 0


def _last_run(url: str, settings: Settings) -> str:
    from nampo.io.store import Store, StoreLocation

    try:
        store = Store(StoreLocation.from_settings(url, settings))
        if not store.exists():
            return "none (no store yet)"
        runs = store.runs()
    except NampoError as exc:
        return f"unknown ({exc})"
    if not runs:
        return "none"
    run_id, meta = max(runs.items(), key=lambda kv: kv[1].get("written", ""))
    units = meta.get("units", {})
    failed = sum(1 for s in units.values() if s == "failed")
    return (
        f"{run_id} at {meta.get('written', '?')}: {meta.get('flow', 'process')} "
        f"{meta.get('first')}..{meta.get('last')}, {len(units)} units, {failed} failed"
    )


def _validate(args, settings: Settings) -> int:
    from nampo.sites.registry import load_definition

    definition = load_definition(args.file)
    site = definition.to_site()
    print(
        f"{args.file}: site {definition.name!r} is valid: {site.grid.width} x "
        f"{site.grid.height} px, {len(site.tiles)} tiles, {len(definition.facilities)} "
        f"facilities; {site.seasons.describe()}"
    )
    return 0


def _remove(args, settings: Settings) -> int:
    registry = _registry(settings)
    registry.remove(args.name)
    store = settings.store_url(args.name)
    print(f"removed {args.name!r} from {registry.url}; its store {store} is kept")
    return 0
