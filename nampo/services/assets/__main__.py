"""``python -m nampo.services.assets ROOT --port N [faults]``: serve a folder until
SIGTERM (what ``nampo stac up --serve-assets`` starts in the background)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from nampo.services.assets.faults import Faults
from nampo.services.assets.server import AssetServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nampo.services.assets")
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--bandwidth-mbps", type=float, default=None)
    parser.add_argument("--error-share", type=float, default=0.0)
    parser.add_argument("--drop-share", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    faults = Faults(
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps,
        error_share=args.error_share,
        drop_share=args.drop_share,
        seed=args.seed,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with AssetServer(args.root, faults, port=args.port) as server:
        print(f"serving {server.root} at {server.url}", flush=True)
        while not stop.wait(0.5):  # wakes for the signal handlers
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
