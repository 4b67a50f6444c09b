"""The PostgreSQL cluster of a state folder: created with initdb, started and stopped with
pg_ctl, run as the ``postgres`` user when we are root, on loopback TCP only."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

from nampo.errors import ServiceError
from nampo.services.pgstac.common import START_TIMEOUT, STOP_TIMEOUT, last_line, log_tail

__all__ = [
    "PG_BIN",
    "PG_DATABASE",
    "PG_USER",
    "as_root",
    "give_to_pg",
    "initdb",
    "postgres_port",
    "prepare_state_dir",
    "read_password",
    "run_as_pg",
    "start_postgres",
    "stop_postgres",
]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
"""The OS user that runs PostgreSQL when we are root (PostgreSQL refuses to run as root)."""
PG_DATABASE = "postgres"


def prepare_state_dir(state_dir: Path) -> Path:
    state_dir = Path(state_dir).absolute()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServiceError(f"cannot create state folder {state_dir}: {exc}") from exc
    if as_root():
        _grant_traverse(state_dir)
    return state_dir


def as_root() -> bool:
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
    result = run_as_pg(["test", "-x", str(folder)])
    return result.returncode == 0


def run_as_pg(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run `cmd` as the ``postgres`` user when we are root (initdb and pg_ctl refuse root)."""
    if as_root():
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


def give_to_pg(path: Path) -> None:
    if as_root():
        user = pwd.getpwnam(PG_USER)
        os.chown(path, user.pw_uid, user.pw_gid)


def initdb(state_dir: Path) -> None:
    """Create the cluster in ``pgdata.partial`` and rename it, so a failed initdb leaves
    nothing that looks like a cluster."""
    if not (PG_BIN / "initdb").exists():
        raise ServiceError(f"PostgreSQL 15 is not installed: {PG_BIN / 'initdb'} is missing")
    partial = state_dir / "pgdata.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(mode=0o700)
    give_to_pg(partial)

    password = secrets.token_urlsafe(24)
    password_file = state_dir / "pg_password"
    password_file.touch(mode=0o600)
    password_file.write_text(password)
    # initdb reads the password as postgres: hand it a copy that user owns, then delete it.
    pwfile = state_dir / "initdb.pw"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password)
    give_to_pg(pwfile)
    try:
        result = run_as_pg(
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
        raise ServiceError(f"initdb failed in {partial}: {last_line(result.stderr)}")
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


def read_password(state_dir: Path) -> str:
    try:
        return (state_dir / "pg_password").read_text().strip()
    except OSError as exc:
        raise ServiceError(
            f"cannot read the database password in {state_dir}: {exc.strerror}; "
            f"delete {state_dir / 'pgdata'} to create a fresh cluster"
        ) from exc


def postgres_port(pgdata: Path) -> int | None:
    """Port of the PostgreSQL running on `pgdata`, or None if it does not run."""
    if not (pgdata / "PG_VERSION").exists():
        return None
    result = run_as_pg([str(PG_BIN / "pg_ctl"), "status", "-D", str(pgdata)])
    if result.returncode != 0:
        return None
    # postmaster.pid: line 1 pid, line 4 port (documented in storage-file-layout).
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def start_postgres(state_dir: Path, port: int) -> None:
    pgdata = state_dir / "pgdata"
    log = state_dir / "postgres.log"
    log.touch()
    give_to_pg(log)
    result = run_as_pg(
        [
            str(PG_BIN / "pg_ctl"),
            "start",
            "-D",
            str(pgdata),
            "-l",
            str(log),
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-o",
            f"-p {port}",
        ]
    )
    if result.returncode != 0:
        tail = log_tail(log)
        why = "address already in use" if "already in use" in tail else last_line(tail)
        raise ServiceError(f"PostgreSQL did not start on 127.0.0.1:{port}: {why}")


def stop_postgres(pgdata: Path) -> None:
    """Stop the PostgreSQL running on `pgdata`; does nothing if it does not run."""
    if postgres_port(pgdata) is not None:
        # Fast shutdown: rolls back open sessions, still a clean checkpoint.
        result = run_as_pg(
            [
                str(PG_BIN / "pg_ctl"),
                "stop",
                "-D",
                str(pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(STOP_TIMEOUT)),
            ],
        )
        if result.returncode != 0:
            raise ServiceError(f"PostgreSQL in {pgdata} did not stop: {last_line(result.stderr)}")
