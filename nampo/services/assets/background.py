"""The stand-in as a background process beside the local STAC API (``nampo stac up
--serve-assets``): started, found and stopped through a state file in the API's state
folder, so that ``nampo stac down`` stops it too."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from nampo.errors import ServiceError
from nampo.services.assets.faults import Faults

__all__ = ["ServedFolder", "running", "start_serving", "stop_serving"]

STATE_FILE = "assets.json"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class ServedFolder:
    """A folder served by a background stand-in."""

    root: str
    url: str
    pid: int

    def url_of(self, path: Path) -> str:
        rel = Path(path).resolve().relative_to(Path(self.root))
        return f"{self.url}/{quote(rel.as_posix())}"


def running(state_dir: Path) -> list[ServedFolder]:
    """The stand-ins started for `state_dir` that still run."""
    return [s for s in _read(state_dir) if _alive(s.pid)]


def start_serving(state_dir: Path, root: Path, faults: Faults = Faults()) -> ServedFolder:  # noqa: B008
    """Serve `root` from a background process on a free port of 127.0.0.1 (the same
    folder served already: that server), recorded in `state_dir`."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ServiceError(f"cannot serve {root}: not a folder")
    current = running(state_dir)
    for served in current:
        if Path(served.root) == root:
            return served
    port = _free_port()
    log = open(Path(state_dir) / f"assets-{port}.log", "ab")  # noqa: SIM115 (the child's)
    command = [
        sys.executable, "-m", "nampo.services.assets", str(root), "--port", str(port),
        "--latency-ms", str(faults.latency_ms), "--error-share", str(faults.error_share),
        "--drop-share", str(faults.drop_share), "--seed", str(faults.seed),
    ]  # fmt: skip
    if faults.bandwidth_mbps is not None:
        command += ["--bandwidth-mbps", str(faults.bandwidth_mbps)]
    with log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    served = ServedFolder(str(root), f"http://127.0.0.1:{port}", proc.pid)
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill(proc.pid)
            raise ServiceError(
                f"the asset server for {root} did not start on 127.0.0.1:{port} (log: {log.name})"
            )
        time.sleep(0.1)
    _write(state_dir, [*current, served])
    return served


def stop_serving(state_dir: Path) -> int:
    """Stop every stand-in started for `state_dir`; returns how many were running."""
    found = _read(state_dir)
    alive = [s for s in found if _alive(s.pid)]
    for served in alive:
        _kill(served.pid)
    (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)
    return len(alive)


def _read(state_dir: Path) -> list[ServedFolder]:
    path = Path(state_dir) / STATE_FILE
    try:
        return [ServedFolder(**entry) for entry in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []


def _write(state_dir: Path, served: list[ServedFolder]) -> None:
    path = Path(state_dir) / STATE_FILE
    path.write_text(json.dumps([asdict(s) for s in served], indent=1))


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("HEAD", "/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError):  # a zombie child of this process counts as gone
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    return True


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
