"""``nampo import``: folders of GeoTIFFs of a site as COGs and STAC items (Earth Search
sentinel-2-l1c shape), loaded into the local STAC API (nampo/io/importer.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_command"]


def add_command(sub) -> None:
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
