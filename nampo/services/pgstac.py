"""The local STAC API: PostgreSQL/PostGIS + pgstac, served by stac-fastapi-pgstac.

The project owns this stack end to end, so tests and demos search a real STAC API on
loopback instead of a mock. Everything lives in one state folder::

    state_dir/
        pgdata/          the PostgreSQL cluster (owned by the ``postgres`` user)
        postgres.log     PostgreSQL's log (owned by ``postgres``: pg_ctl writes it)
        api.log          uvicorn's log
        pg_password      the superuser's password (mode 0600)
        state.json       ports, pids, url and dsn of the running stack (mode 0600)
        .lock            serialises start/stop of this folder

Ports are chosen free at run time; both servers listen on 127.0.0.1 only and PostgreSQL
has no Unix socket (so no socket folder has to be shared with the ``postgres`` user).

Examples
--------
>>> endpoint = start(Path("/tmp/stac"))                        # doctest: +SKIP
>>> load(endpoint, Path("archives/nampo-small"))               # doctest: +SKIP
>>> stop(Path("/tmp/stac"))                                    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import psutil

from nampo.errors import ServiceError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
"""The OS user that runs PostgreSQL when we are root (PostgreSQL refuses to run as root)."""
PG_DATABASE = "postgres"

T = TypeVar("T")

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0

# The numeric queryable makes pgstac compare and sort eo:cloud_cover as a number: without
# it "9.5" sorts after "10.0". Context 'on' makes every search return numberMatched; a
# zero stats TTL stops pgstac from serving a count cached before the last load.
_PREPARE_SQL = [
    (
        "SELECT upsert_queryable('eo:cloud_cover', %s::jsonb, 'to_float')",
        (
            json.dumps(
                {
                    "title": "Cloud cover",
                    "description": "Percentage of the scene covered by clouds",
                    "type": "number",
                    "minimum": 0,
                    "maximum": 100,
                }
            ),
        ),
    ),
    (
        "INSERT INTO pgstac_settings (name, value) VALUES ('context', 'on'), "
        "('context_stats_ttl', '0 seconds') "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (),
    ),
]


@dataclass(frozen=True)
class StacEndpoint:
    """Where the local STAC API and its database answer."""

    url: str
    """Root URL of the STAC API, e.g. ``http://127.0.0.1:54321``."""
    pg_port: int
    """PostgreSQL's TCP port on 127.0.0.1."""
    api_port: int
    """The STAC API's TCP port on 127.0.0.1."""
    dsn: str
    """libpq connection string of the pgstac database (includes the password)."""


@dataclass(frozen=True)
class ServiceStatus:
    """What :func:`status` found in a state folder."""

    postgres: bool
    """PostgreSQL of this folder is running."""
    api: bool
    """The STAC API recorded in ``state.json`` answers ``/_mgmt/ping`` and serves this
    folder's running PostgreSQL."""
    endpoint: StacEndpoint | None
    """The endpoint recorded by the last :func:`start`, if any."""

    @property
    def running(self) -> bool:
        return self.postgres and self.api


# --------------------------------------------------------------------------- public API


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
    state_dir = _prepare_state_dir(state_dir)
    with _locked(state_dir):
        current = status(state_dir)
        if current.running and current.endpoint is not None:
            return current.endpoint

        pgdata = state_dir / "pgdata"
        if not (pgdata / "PG_VERSION").exists():
            _initdb(state_dir)
        password = _read_password(state_dir)
        running_port = _postgres_port(pgdata)
        if running_port is None:
            running_port, _ = _on_port(pg_port, lambda port: _start_postgres(state_dir, port))
        dsn = f"postgresql://postgres:{password}@127.0.0.1:{running_port}/{PG_DATABASE}"
        _prepare_database(dsn)

        # Not running as a whole: an API left over (e.g. serving a PostgreSQL that died)
        # is replaced.
        _kill_api(_read_state(state_dir))
        port, api_pid = _on_port(
            api_port, lambda port: _start_api(state_dir, port, running_port, password)
        )

        endpoint = StacEndpoint(f"http://127.0.0.1:{port}", running_port, port, dsn)
        _write_state(state_dir, {**asdict(endpoint), "api_pid": api_pid})
        return endpoint


def load(
    endpoint: StacEndpoint, archive_dir: Path, only: Callable[[dict], bool] | None = None
) -> int:
    """Upsert ``collection.json`` and ``items.ndjson`` of `archive_dir` into pgstac.

    Loading the same archive again changes nothing (items are upserted by id). `only`
    keeps the items for which it is true (a catalog that grows over time: load part of an
    archive now, the rest later).

    Returns
    -------
    int
        Number of items loaded.

    Examples
    --------
    >>> load(endpoint, Path("archives/nampo-small"))   # doctest: +SKIP
    212
    """
    from pypgstac.load import Loader, Methods

    archive_dir = Path(archive_dir)
    collection_path = archive_dir / "collection.json"
    items_path = archive_dir / "items.ndjson"
    for path in (collection_path, items_path):
        if not path.is_file():
            raise ServiceError(f"cannot load archive {archive_dir}: {path.name} is missing")
    # We parse the JSON ourselves and hand pypgstac dicts: its file reader rewrites escaped
    # backslashes inside strings, and our errors can name the bad line.
    collection = _read_json(collection_path)
    items = [_read_json(items_path, line, n) for n, line in _numbered_lines(items_path)]
    if only is not None:
        items = [item for item in items if only(item)]
    try:
        with _pgstac_db(endpoint.dsn) as db:
            loader = Loader(db=db)
            loader.load_collections(iter([collection]), Methods.upsert)
            loader.load_items(iter(items), Methods.upsert)
    except ServiceError:
        raise
    except Exception as exc:  # psycopg and pgstac errors alike
        raise ServiceError(f"loading {archive_dir} into pgstac failed: {_one_line(exc)}") from exc
    return len(items)


def stop(state_dir: Path) -> None:
    """Stop the STAC API and PostgreSQL of `state_dir`; does nothing if neither runs."""
    state_dir = Path(state_dir).absolute()
    if not state_dir.exists():
        return
    with _locked(state_dir):
        _kill_api(_read_state(state_dir))
        pgdata = state_dir / "pgdata"
        if _postgres_port(pgdata) is not None:
            # Fast shutdown: rolls back open sessions, still a clean checkpoint.
            result = _run_as_pg(
                [
                    str(PG_BIN / "pg_ctl"),
                    "stop",
                    "-D",
                    str(pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(_STOP_TIMEOUT)),
                ],
            )
            if result.returncode != 0:
                raise ServiceError(
                    f"PostgreSQL in {pgdata} did not stop: {_last_line(result.stderr)}"
                )
        (state_dir / "state.json").unlink(missing_ok=True)


def status(state_dir: Path) -> ServiceStatus:
    """Report whether PostgreSQL and the STAC API of `state_dir` are running."""
    state_dir = Path(state_dir).absolute()
    state = _read_state(state_dir)
    endpoint = None
    if state:
        endpoint = StacEndpoint(state["url"], state["pg_port"], state["api_port"], state["dsn"])
    pg_port = _postgres_port(state_dir / "pgdata")
    api = bool(state) and _api_process_alive(state) and _ping(state["url"])
    return ServiceStatus(
        postgres=pg_port is not None,
        api=api and endpoint is not None and endpoint.pg_port == pg_port,
        endpoint=endpoint,
    )


def read_endpoint(state_dir: Path) -> StacEndpoint:
    """The endpoint recorded in ``state_dir/state.json`` (raises if nothing was started)."""
    state = _read_state(Path(state_dir).absolute())
    if not state:
        raise ServiceError(
            f"the local STAC API is not running (no state.json in {state_dir}); "
            "start it with `nampo stac up`"
        )
    return StacEndpoint(state["url"], state["pg_port"], state["api_port"], state["dsn"])


# --------------------------------------------------------------------- folders and users


def _prepare_state_dir(state_dir: Path) -> Path:
    state_dir = Path(state_dir).absolute()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServiceError(f"cannot create state folder {state_dir}: {exc}") from exc
    if _as_root():
        _grant_traverse(state_dir)
    return state_dir


def _as_root() -> bool:
    return os.geteuid() == 0


def _grant_traverse(state_dir: Path) -> None:
    """Let the ``postgres`` user reach ``state_dir/pgdata`` through every parent folder.

    PostgreSQL runs as ``postgres`` and needs search (x) permission on each folder above
    its data folder. State often lives under ``/root`` (0700) or a private temp folder, so
    we add the others-x bit to the folders that lack it. Only traversal is granted: others
    still cannot list those folders, and the cluster itself stays 0700 ``postgres``-only.
    (No ACL tools on this machine, and placing the cluster outside ``state_dir`` would
    split one stack over two places.) To avoid touching ``/root``, set ``NAMPO_HOME`` to a
    folder under a world-traversable parent such as ``/srv`` or ``/var/lib``.
    """
    if _pg_can_traverse(state_dir):
        return
    for folder in reversed([state_dir, *state_dir.parents]):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            try:
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            except OSError as exc:
                raise ServiceError(f"cannot let user {PG_USER} traverse {folder}: {exc}") from exc
    if not _pg_can_traverse(state_dir):
        raise ServiceError(
            f"user {PG_USER} cannot reach {state_dir} even after chmod o+x on its parents; "
            "choose a state folder elsewhere (NAMPO_HOME)"
        )


def _pg_can_traverse(folder: Path) -> bool:
    result = _run_as_pg(["test", "-x", str(folder)])
    return result.returncode == 0


def _run_as_pg(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run `cmd` as the ``postgres`` user when we are root (initdb and pg_ctl refuse root)."""
    if _as_root():
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            **kwargs,
        )
    except FileNotFoundError as exc:
        raise ServiceError(
            f"cannot run {cmd[0]}: {exc.strerror} (is PostgreSQL 15 installed?)"
        ) from exc


def _give_to_pg(path: Path) -> None:
    if _as_root():
        user = pwd.getpwnam(PG_USER)
        os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    # One start/stop at a time per state folder (e.g. two test sessions sharing it).
    with open(state_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- PostgreSQL


def _initdb(state_dir: Path) -> None:
    """Create the cluster in ``pgdata.partial`` and rename it, so a failed initdb leaves
    nothing that looks like a cluster."""
    if not (PG_BIN / "initdb").exists():
        raise ServiceError(f"PostgreSQL 15 is not installed: {PG_BIN / 'initdb'} is missing")
    partial = state_dir / "pgdata.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(mode=0o700)
    _give_to_pg(partial)

    password = secrets.token_urlsafe(24)
    password_file = state_dir / "pg_password"
    password_file.touch(mode=0o600)
    password_file.write_text(password)
    # initdb reads the password as postgres: hand it a copy that user owns, then delete it.
    pwfile = state_dir / "initdb.pw"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password)
    _give_to_pg(pwfile)
    try:
        result = _run_as_pg(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(partial),
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ServiceError(f"initdb failed in {partial}: {_last_line(result.stderr)}")
    # Loopback TCP only; no Unix socket, so no socket folder must be writable by postgres.
    # Small buffers: this is a demo catalog on a shared 2-core machine.
    with open(partial / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# nampo: local STAC catalog\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\n"
            "shared_buffers = 64MB\n"
            "max_connections = 40\n"
            "synchronous_commit = off\n"
        )
    partial.rename(state_dir / "pgdata")


def _read_password(state_dir: Path) -> str:
    try:
        return (state_dir / "pg_password").read_text().strip()
    except OSError as exc:
        raise ServiceError(
            f"cannot read the database password in {state_dir}: {exc.strerror}; "
            f"delete {state_dir / 'pgdata'} to create a fresh cluster"
        ) from exc


def _postgres_port(pgdata: Path) -> int | None:
    """Port of the PostgreSQL running on `pgdata`, or None if it does not run."""
    if not (pgdata / "PG_VERSION").exists():
        return None
    result = _run_as_pg([str(PG_BIN / "pg_ctl"), "status", "-D", str(pgdata)])
    if result.returncode != 0:
        return None
    # postmaster.pid: line 1 pid, line 4 port (documented in storage-file-layout).
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def _start_postgres(state_dir: Path, port: int) -> None:
    pgdata = state_dir / "pgdata"
    log = state_dir / "postgres.log"
    log.touch()
    _give_to_pg(log)
    result = _run_as_pg(
        [
            str(PG_BIN / "pg_ctl"),
            "start",
            "-D",
            str(pgdata),
            "-l",
            str(log),
            "-w",
            "-t",
            str(int(_START_TIMEOUT)),
            "-o",
            f"-p {port}",
        ]
    )
    if result.returncode != 0:
        tail = _tail(log)
        why = "address already in use" if "already in use" in tail else _last_line(tail)
        raise ServiceError(f"PostgreSQL did not start on 127.0.0.1:{port}: {why}")


def _prepare_database(dsn: str) -> None:
    """Install or upgrade pgstac (like ``pypgstac migrate``) and apply our settings."""
    from pypgstac.migrate import Migrate

    try:
        with _pgstac_db(dsn) as db:
            Migrate(db).run_migration()
            conn = db.connect()
            with conn.transaction():
                for sql, params in _PREPARE_SQL:
                    conn.execute(sql, params)
    except ServiceError:
        raise
    except Exception as exc:  # psycopg and pgstac errors alike
        raise ServiceError(f"preparing pgstac in {_redact(dsn)} failed: {_one_line(exc)}") from exc


@contextlib.contextmanager
def _pgstac_db(dsn: str) -> Iterator:
    """A pypgstac ``PgstacDB`` on a one-connection pool that is closed afterwards.

    ``PgstacDB`` opens a pool of its own that its ``__exit__`` forgets without closing
    (connections and pool threads would outlive the call), so we own the pool.
    """
    # Imported here: pypgstac pulls in psycopg, smart_open and fire, which only this needs.
    import psycopg
    from psycopg_pool import ConnectionPool
    from pypgstac.db import PgstacDB

    # Fail fast: a pool would keep retrying a stopped server until its timeout.
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        raise ServiceError(
            f"cannot connect to PostgreSQL at {_redact(dsn)}: {str(exc).strip().splitlines()[0]}"
        ) from exc
    with ConnectionPool(dsn, min_size=1, max_size=1, open=True, timeout=15) as pool:
        db = PgstacDB(dsn=dsn, pool=pool)
        try:
            db.connect()
            yield db
        finally:
            db.disconnect()


# ------------------------------------------------------------------------------- the API


def _start_api(state_dir: Path, port: int, pg_port: int, password: str) -> int:
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
        raise ServiceError(f"cannot launch the STAC API: {_last_line(result.stderr)}")
    pid = int(result.stdout.strip())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if _ping(url):
            return pid
        if not _alive(pid):
            break
        time.sleep(0.2)
    _kill_pid(pid)
    raise ServiceError(f"the STAC API did not start on {url}: {_last_line(_tail(log))}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _ping(url: str) -> bool:
    try:
        response = httpx.get(f"{url}/_mgmt/ping", timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _api_process_alive(state: dict) -> bool:
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


def _kill_api(state: dict) -> None:
    proc = _our_uvicorn(state)
    if proc is not None:
        _kill_pid(proc.pid)


def _kill_pid(pid: int) -> None:
    """SIGTERM (uvicorn closes its DB pool), then SIGKILL if it lingers."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=_STOP_TIMEOUT)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            proc.wait(timeout=5)


# ------------------------------------------------------------------------------- helpers


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


def _read_state(state_dir: Path) -> dict:
    try:
        return json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_state(state_dir: Path, state: dict) -> None:
    # Atomic replace, 0600: the dsn holds the password.
    tmp = state_dir / "state.json.tmp"
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(state_dir / "state.json")


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path) as handle:
        for n, line in enumerate(handle, start=1):
            if line.strip():
                yield n, line


def _read_json(path: Path, text: str | None = None, line: int | None = None) -> dict:
    try:
        return json.loads(path.read_text() if text is None else text)
    except (OSError, ValueError) as exc:
        where = f"{path}:{line}" if line else str(path)
        raise ServiceError(f"cannot read STAC JSON {where}: {exc}") from exc


def _tail(path: Path, n_bytes: int = 4096) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - n_bytes))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    """The last error line of a log (hints follow errors in PostgreSQL's output)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [
        line
        for line in lines
        if any(word in line.lower() for word in ("error", "fatal", "panic", "exception"))
    ]
    return (errors or lines or ["(no output)"])[-1]


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_last_line(str(exc))}"


def _redact(dsn: str) -> str:
    head, sep, tail = dsn.rpartition("@")
    return f"postgresql://postgres:***@{tail}" if sep else dsn
