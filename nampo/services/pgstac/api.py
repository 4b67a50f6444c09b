"""The STAC API process: stac-fastapi-pgstac under uvicorn, detached from its caller, found
again by its recorded pid and port, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from nampo.errors import ServiceError
from nampo.services.pgstac.common import START_TIMEOUT, STOP_TIMEOUT, last_line, log_tail
from nampo.services.pgstac.postgres import PG_DATABASE, PG_USER

__all__ = ["api_process_alive", "kill_api", "ping", "start_api"]


def start_api(state_dir: Path, port: int, pg_port: int, password: str) -> int:
    """Start uvicorn detached (own session, survives us) and wait for ``/_mgmt/ping``."""
    log = state_dir / "api.log"
    env = {
        **os.environ,
        "PGUSER": PG_USER,
        "PGPASSWORD": password,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_port),
        "PGDATABASE": PG_DATABASE,
        "DB_MIN_CONN_SIZE": "1",
        "DB_MAX_CONN_SIZE": "4",
        # Merging items with their collection's item_assets ("hydration") in pgstac's
        # PL/pgSQL costs about 20 ms per Sentinel-2 item (35 assets); in the API, ~1 ms.
        "USE_API_HYDRATE": "true",
        "STAC_FASTAPI_TITLE": "nampo local STAC API",
        "STAC_FASTAPI_DESCRIPTION": "Rendered scenario archives served by stac-fastapi-pgstac",
        "STAC_FASTAPI_LANDING_ID": "nampo-local",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "stac_fastapi.pgstac.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    # A throwaway launcher starts uvicorn and exits, so uvicorn is re-parented to init: no
    # zombie or "still running" ResourceWarning in long-lived callers such as pytest.
    launcher = (
        "import subprocess, sys\n"
        "log = open(sys.argv[1], 'ab')\n"
        "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log,"
        " stderr=subprocess.STDOUT, start_new_session=True)\n"
        "print(p.pid)\n"
        "p.returncode = 0\n"  # we do not wait for it: silence Popen.__del__
    )
    # cwd=state_dir: stac-fastapi reads a ".env" from its working folder; ours has none.
    result = subprocess.run(
        [sys.executable, "-c", launcher, str(log), *cmd],
        capture_output=True,
        text=True,
        env=env,
        cwd=state_dir,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(f"cannot launch the STAC API: {last_line(result.stderr)}")
    pid = int(result.stdout.strip())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ping(url):
            return pid
        if not _alive(pid):
            break
        time.sleep(0.2)
    _kill_pid(pid)
    raise ServiceError(f"the STAC API did not start on {url}: {last_line(log_tail(log))}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def ping(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/_mgmt/ping", timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def api_process_alive(state: dict) -> bool:
    return _our_uvicorn(state) is not None


def _our_uvicorn(state: dict) -> psutil.Process | None:
    """The uvicorn process recorded in `state`, if it still runs (pids get reused)."""
    pid = state.get("api_pid")
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if "uvicorn" in cmdline and str(state.get("api_port")) in cmdline:
        return proc
    return None


def kill_api(state: dict) -> None:
    proc = _our_uvicorn(state)
    if proc is not None:
        _kill_pid(proc.pid)


def _kill_pid(pid: int) -> None:
    """SIGTERM (uvicorn closes its DB pool), then SIGKILL if it lingers."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            proc.wait(timeout=5)
