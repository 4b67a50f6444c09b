"""The local Prefect server: ``prefect server start`` on loopback as a child process with
its own ``PREFECT_HOME`` (its SQLite database persists there, so runs stay browsable), on a
free port, stopped with the process that started it (docs/deploy.md, "The local Prefect
server").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["START_TIMEOUT", "PrefectServer", "free_port", "prefect_env", "running", "start", "stop"]

START_TIMEOUT = 90.0
"""Seconds the server gets to answer ``/api/health`` (it takes about 10 s)."""


@dataclass(frozen=True)
class PrefectServer:
    """A running local Prefect server."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:41234``; the UI is at the root."""
    process: subprocess.Popen
    """The ``prefect server start`` process (leader of its own process group)."""
    log: Path
    """The server's log (``PREFECT_HOME/server.log``)."""

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for any Prefect process of this installation (server, serving process,
    flow runs, Dask workers): one home, no analytics, one API."""
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # Served deployments pick up runs within a second instead of ten.
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(home: Path, port: int | None = None) -> PrefectServer:
    """Start ``prefect server start`` on 127.0.0.1 and wait until it is healthy."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **prefect_env(home),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        # Without it the UI calls port 4200 and shows "Unable to connect".
        "PREFECT_UI_API_URL": f"{url}/api",
        # SQLite: wait for the write lock instead of answering 503 "database is locked"
        # when many task runs report at once on a loaded machine (default 10 s).
        "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
    }
    env.pop("PREFECT_API_URL", None)  # the server must not think it is a client of another
    log = home / "server.log"
    handle = open(log, "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped as a group: uvicorn and its services
    )  # fmt: skip
    handle.close()
    server = PrefectServer(url, proc, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Prefect server exited ({proc.returncode}): {_tail(log)}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(server)
    raise RuntimeError(f"Prefect server not healthy after {START_TIMEOUT:.0f} s: {_tail(log)}")


def stop(server: PrefectServer) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@contextmanager
def running(home: Path, port: int | None = None):
    server = start(home, port)
    try:
        yield server
    finally:
        stop(server)


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"
