"""``nampo report``: write a site's report (index.html, maps, series, COGs) from its store
(nampo/report)."""

from __future__ import annotations

from pathlib import Path

from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["add_command"]


def add_command(sub) -> None:
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
    from nampo.report import build_report
    from nampo.scenario.known_sites import change_params, scenario_archive, site_for, truth_score

    store = Store(StoreLocation.from_settings(args.store, settings))
    if not store.exists():
        raise NampoError(f"no nampo store at {store.url}")
    site = site_for(store, args.scenario)
    archive = args.archive or scenario_archive(site.name, settings.archives_dir)
    out = args.out or Path(f"{Path(store.url.rstrip('/')).stem}-report")
    score = truth_score(archive)
    report = build_report(store, out, site, change=change_params(site.name), score=score)
    for note in report.data.notes:
        print(f"note: {note}")
    print(f"{len(report.data.events)} events; report written in {report.seconds['total']:.1f} s")
    print(report.index)
    return 0
