"""The ``nampo`` command line. Settings are read here, once, and passed down."""

from __future__ import annotations

import argparse
import sys

from nampo.errors import NampoError
from nampo.settings import Settings


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nampo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_scenario_commands(sub)
    _add_stac_commands(sub)
    return parser


def _add_scenario_commands(sub) -> None:
    """`nampo scenario ...` and `nampo demo` (owned by the scenario engine)."""


def _add_stac_commands(sub) -> None:
    """`nampo stac up|down|status|load|search` (owned by nampo.services)."""


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    settings = Settings()
    try:
        return int(args.func(args, settings) or 0)
    except NampoError as exc:
        print(f"nampo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nampo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
