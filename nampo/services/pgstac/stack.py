"""The local STAC API as a whole: start, stop and status of the PostgreSQL cluster and the
STAC API of one state folder, one caller at a time."""

from __future__ import annotations

import contextlib
import fcntl
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from nampo.errors import ServiceError
from nampo.services.pgstac.api import api_process_alive, kill_api, ping, start_api
from nampo.services.pgstac.database import prepare_database
from nampo.services.pgstac.endpoint import ServiceStatus, StacEndpoint, read_state, write_state
from nampo.services.pgstac.postgres import (
    PG_DATABASE,
    initdb,
    postgres_port,
    prepare_state_dir,
    read_password,
    start_postgres,
    stop_postgres,
)

__all__ = ["start", "status", "stop"]

T = TypeVar("T")


def start(
    state_dir: Path, *, pg_port: int | None = None, api_port: int | None = None
) -> StacEndpoint:
    """Start (or find running) the local STAC API of `state_dir` and return its endpoint.

    Creates the PostgreSQL cluster on first use, migrates pgstac, registers the numeric
    ``eo:cloud_cover`` queryable and turns on ``numberMatched``. Idempotent: when the stack
    already runs, returns its endpoint (the port arguments are then ignored).

    Parameters
    ----------
    state_dir
        Folder holding the cluster, logs and ``state.json`` (created if missing).
    pg_port, api_port
        Ports to listen on (127.0.0.1); free ports are chosen when omitted.

    Raises
    ------
    ServiceError
        Naming the step that failed and the last line of its log.

    Examples
    --------
    >>> endpoint = start(Path("/tmp/stac"))     # doctest: +SKIP
    >>> endpoint.url                            # doctest: +SKIP
    'http://127.0.0.1:41231'
    """
    state_dir = prepare_state_dir(state_dir)
    with _locked(state_dir):
        current = status(state_dir)
        if current.running and current.endpoint is not None:
            return current.endpoint

        pgdata = state_dir / "pgdata"
        if not (pgdata / "PG_VERSION").exists():
            initdb(state_dir)
        password = read_password(state_dir)
        running_port = postgres_port(pgdata)
        if running_port is None:
            running_port, _ = _on_port(pg_port, lambda port: start_postgres(state_dir, port))
        dsn = f"postgresql://postgres:{password}@127.0.0.1:{running_port}/{PG_DATABASE}"
        prepare_database(dsn)

        # Not running as a whole: an API left over (e.g. serving a PostgreSQL that died)
        # is replaced.
        kill_api(read_state(state_dir))
        port, api_pid = _on_port(
            api_port, lambda port: start_api(state_dir, port, running_port, password)
        )

        endpoint = StacEndpoint(f"http://127.0.0.1:{port}", running_port, port, dsn)
        write_state(state_dir, {**asdict(endpoint), "api_pid": api_pid})
        return endpoint


def stop(state_dir: Path) -> None:
    """Stop the STAC API and PostgreSQL of `state_dir`; does nothing if neither runs."""
    state_dir = Path(state_dir).absolute()
    if not state_dir.exists():
        return
    with _locked(state_dir):
        kill_api(read_state(state_dir))
        stop_postgres(state_dir / "pgdata")
        (state_dir / "state.json").unlink(missing_ok=True)


def status(state_dir: Path) -> ServiceStatus:
    """Report whether PostgreSQL and the STAC API of `state_dir` are running."""
    state_dir = Path(state_dir).absolute()
    state = read_state(state_dir)
    endpoint = None
    if state:
        endpoint = StacEndpoint(state["url"], state["pg_port"], state["api_port"], state["dsn"])
    pg_port = postgres_port(state_dir / "pgdata")
    api = bool(state) and api_process_alive(state) and ping(state["url"])
    return ServiceStatus(
        postgres=pg_port is not None,
        api=api and endpoint is not None and endpoint.pg_port == pg_port,
        endpoint=endpoint,
    )


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    # One start/stop at a time per state folder (e.g. two test sessions sharing it).
    with open(state_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _on_port(requested: int | None, launch: Callable[[int], T]) -> tuple[int, T]:
    """``launch(port)`` on the requested port, or on a free one chosen now.

    Another program may take a free port between our choice and the server's bind; then
    we choose again (twice at most). A requested port is never replaced.
    """
    for attempt in range(3):
        port = requested or _free_port()
        try:
            return port, launch(port)
        except ServiceError as exc:
            if requested or attempt == 2 or "already in use" not in str(exc).lower():
                raise
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
