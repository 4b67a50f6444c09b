"""``nampo-flows``: the Prefect side of nampo on one machine.

``nampo-flows serve``   start a Prefect server on 127.0.0.1 (its database under
                        NAMPO_HOME/prefect), register the backfill, report and monitoring
                        deployments and serve them until Ctrl-C; open the printed URL,
                        pick the backfill deployment, "Run" → "Custom run".
``nampo-flows demo``    the main job on the built-in default: render the Nampo archive,
                        serve it from the local STAC API, run the backfill flow over the
                        whole scenario on a local Dask cluster into a local Zarr store,
                        then write the site's report (NAMPO_HOME/reports/<site>).

Prefect is configured through the environment before it is imported: every process of a
run (this one, the flow runs it serves, the Dask workers) talks to one server.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from flows import prefect_server
from nampo.cli import run_command
from nampo.errors import NampoError
from nampo.scenario.known_sites import KNOWN_SITES, known_site, register_builtin
from nampo.settings import Settings
from nampo.sites.registry import Registry

__all__ = ["UI_PORT", "demo", "main", "serve"]

UI_PORT = 4200
"""Prefect's usual port, used when free (else any free port)."""


def _port(wanted: int | None) -> int:
    if wanted:
        return wanted
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", UI_PORT))
            return UI_PORT
        except OSError:
            return prefect_server.free_port()


def _use_server(settings: Settings, server: prefect_server.PrefectServer) -> None:
    os.environ.update(prefect_server.prefect_env(settings.home / "prefect", server.api_url))
    # The units' task-run lines are the progress; Dask's own INFO lines only drown them.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


def serve(args, settings: Settings) -> int:
    home = settings.home / "prefect"
    with prefect_server.running(home, _port(args.port)) as server:
        _use_server(settings, server)
        print(f"Prefect server: {server.url} (UI), API {server.api_url}")
        print(f"  database and logs: {home}")
        print(
            "  deployments: nampo-backfill/backfill, nampo-report/report and "
            "nampo-monitor/monitor (on demand), nampo-monitor-sites/monitor-sites (daily)"
        )
        registry = Registry.from_settings(settings)
        print(
            f"  sites in {registry.url}: {', '.join(registry.names()) or 'none'} "
            "(`nampo site add`, then restart this to see a new one in the forms)"
        )
        print("  Ctrl-C stops the deployments and the server", flush=True)
        child = subprocess.Popen([sys.executable, "-m", "flows.deployments"], env=os.environ.copy())
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                # Seen on a loaded machine: Prefect's serve hung for good cancelling its
                # asyncio tasks after SIGTERM. It holds no state of ours: stop it.
                child.kill()
                child.wait()
            return 0


def demo(args, settings: Settings) -> int:
    from nampo.scenario.archive import build_archive
    from nampo.services import pgstac

    site = args.site
    scenario = known_site(site).scenario
    t0 = time.perf_counter()
    print(f"1/6 archive of {scenario.name}", flush=True)
    archive = build_archive(scenario, settings.archives_dir, workers=settings.render_workers)
    m = archive.manifest()
    print(f"    {archive.path} ({'built' if archive.built else 'cached'}: {m['items']} items)")
    registry = Registry.from_settings(settings)
    added = register_builtin(registry, site)  # the flows take sites from the registry
    print(f"    site {site!r} {'registered' if added else 'already registered'} in {registry.url}")
    print("2/6 local STAC API (stac-fastapi-pgstac on PostgreSQL/PostGIS)", flush=True)
    was_running = pgstac.status(settings.stac_dir).running
    endpoint = pgstac.start(settings.stac_dir)
    try:
        print(f"    {endpoint.url}: loaded {pgstac.load(endpoint, archive.path)} items")
        first = args.first or f"{archive.scenario.period.start:%Y-%m}"
        last = args.last or f"{archive.scenario.period.end:%Y-%m}"
        print("3/6 Prefect server", flush=True)
        with prefect_server.running(settings.home / "prefect", _port(None)) as server:
            _use_server(settings, server)
            print(f"    {server.url}")
            print(f"4/6 backfill flow: {site}, {first}..{last}, local Dask cluster", flush=True)
            from flows.backfill import backfill  # after the environment names the server

            summary = backfill(
                first_month=first,
                last_month=last,
                site=site,
                store=args.store,
                workers=args.workers,
                force=args.force,
            )
            # dated and stored before the report, which reads them from the store
            print("5/6 events: dated from the store's monthly products, stored in it", flush=True)
            found = _date_changes(site, summary["store"], settings)
            print("6/6 report flow", flush=True)
            from flows.report import report

            index = report(site=site, store=args.store)
            from prefect.logging.handlers import APILogWorker

            # the run's last logs reach the server before it stops
            APILogWorker.drain_all(timeout=5)
    finally:
        if not was_running:
            pgstac.stop(settings.stac_dir)
    print()
    print(
        f"Done in {time.perf_counter() - t0:.0f} s: run {summary['run_id']}, "
        f"{summary['done']} units computed, {summary['skipped']} already complete."
    )
    print(f"Store: {summary['store']}")
    print(f"  open it: xarray.open_zarr({summary['store']!r})  (layout: docs/store.md)")
    print(f"Report: {index}")
    print("Prefect UI with this run: `uv run nampo-flows serve`, then open the URL it prints")
    print(f"  (runs are kept in {settings.home / 'prefect'})")
    _what_happened(site, summary["store"], found, archive.path, settings)
    return 0


def _date_changes(site_name: str, store_url: str, settings: Settings) -> list:
    """The site's events, dated from the store's monthly products and stored in it."""
    from nampo.analysis import events
    from nampo.io.store import Store, StoreLocation
    from nampo.scenario.known_sites import change_params, load_site

    site = load_site(site_name)
    store = Store(StoreLocation.from_settings(store_url, settings))
    _, found = events.site_events(
        store, facilities=site.facilities, change=change_params(site_name)
    )
    events.save_events(store, found)
    return found


def _what_happened(site_name: str, store_url: str, found, archive, settings: Settings) -> None:
    """The site's events and activity as an analyst reads them (the events are stored
    in the store too), then the score against the scenario's truth."""
    from nampo.analysis import activity, events
    from nampo.evaluation import activity_score, score
    from nampo.io.store import Store, StoreLocation
    from nampo.run.units import month_end
    from nampo.scenario.known_sites import load_site

    site = load_site(site_name)
    titles = {name: title for name, title, _ in site.facilities}
    store = Store(StoreLocation.from_settings(store_url, settings))
    print()
    print(f"What changed at {site.title}:", flush=True)
    big = [e for e in found if e.area_m2 >= score.MIN_AREA_M2]
    for e in big:
        print(f"  - {events.describe(e, titles)}")
    print(
        f"  ({len(found) - len(big)} smaller changes under {score.MIN_AREA_M2:,.0f} m² not "
        f"listed; all {len(found)} are stored in {store.url}/nampo/events/ as GeoJSON and "
        "GeoParquet)"
    )
    docs = store.activity()
    if docs:
        print("Activity:")
        for line in activity.describe(docs, titles):
            print(f"  - {line}")
    print()
    print("Score against the scenario's truth (docs/change.md):")
    first, last = events.store_period(store)
    result = score.score(
        [{**e.properties(), "geometry": e.geometry} for e in found],
        archive,
        period=(first, month_end(last)),  # a shorter run is scored on its own months
    )
    print(_indent(result.format()))
    if docs:
        print(_indent(activity_score.score_activity(docs, archive).format()))


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nampo-flows", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="Prefect server + the deployments, on 127.0.0.1")
    s.add_argument("--port", type=int, default=None, help=f"default {UI_PORT} when free")
    s.set_defaults(func=serve)
    d = sub.add_parser("demo", help="the main job on the built-in Nampo scenario")
    d.add_argument("--site", choices=sorted(KNOWN_SITES), default="nampo")
    d.add_argument("--first", metavar="YYYY-MM", help="default: the scenario's first month")
    d.add_argument("--last", metavar="YYYY-MM", help="default: the scenario's last month")
    d.add_argument("--store", help="default: NAMPO_HOME/stores/<site>.zarr")
    d.add_argument("--workers", type=int, default=2, help="local Dask worker processes")
    d.add_argument("--force", action="store_true", help="recompute completed units")
    d.set_defaults(func=demo)
    a = sub.add_parser(
        "alerts", help="notify a webhook (or Slack) of new changes (infra/alerts/automation.yaml)"
    )
    to = a.add_mutually_exclusive_group(required=True)
    to.add_argument("--webhook", metavar="URL", help="POST each new change as JSON to URL")
    to.add_argument("--slack", metavar="URL", help="a Slack incoming-webhook URL")
    a.set_defaults(func=alerts)
    return parser


def alerts(args, settings: Settings) -> int:
    """Create (or replace) the automation that turns new-change events into notifications,
    on the Prefect server of PREFECT_API_URL."""
    if not os.environ.get("PREFECT_API_URL"):
        raise NampoError(
            "PREFECT_API_URL names no Prefect server: set it (with `nampo-flows serve` "
            "running: http://127.0.0.1:<port>/api)"
        )
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    from flows.alerts import AUTOMATION, create_alerting

    if args.slack:
        block = SlackWebhook(url=args.slack)
    else:
        block = CustomWebhookNotificationBlock(
            name="nampo", url=args.webhook, json_data={"subject": "{{subject}}", "body": "{{body}}"}
        )
    automation = create_alerting(block)
    print(f"automation {automation} ({AUTOMATION.name}) notifies {args.webhook or 'Slack'}")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # so that the servers this command started are stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    # Also when started with SIGINT ignored (by a non-interactive shell's `&`, which
    # Python then leaves ignored): Ctrl-C must stop what this command started.
    signal.signal(signal.SIGINT, _interrupt)
    return run_command("nampo-flows", _parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
