"""The ``nampo`` command line. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import sys

from nampo.cli import events, imports, process, report, scenario, score, site, stac, store
from nampo.errors import NampoError
from nampo.settings import Settings

__all__ = ["build_parser", "main", "run_command"]


def build_parser() -> argparse.ArgumentParser:
    """The ``nampo`` parser: one sub-command (or group of them) per module of this package."""
    parser = argparse.ArgumentParser(prog="nampo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    site.add_commands(sub)
    scenario.add_commands(sub)
    stac.add_commands(sub)
    process.add_command(sub)
    events.add_command(sub)
    score.add_command(sub)
    report.add_command(sub)
    store.add_commands(sub)
    imports.add_command(sub)
    return parser


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
    return run_command("nampo", build_parser().parse_args(argv))
