"""``nampo scenario validate|build``: scenario files and their rendered archives (the main
job is ``nampo-flows demo``)."""

from __future__ import annotations

import sys
from pathlib import Path

from nampo.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub) -> None:
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
