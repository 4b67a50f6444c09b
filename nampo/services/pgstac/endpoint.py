"""Where the running local STAC API answers: :class:`StacEndpoint`, recorded in the state
folder's ``state.json`` by :func:`~nampo.services.pgstac.start`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nampo.errors import ServiceError

__all__ = ["ServiceStatus", "StacEndpoint", "read_endpoint", "read_state", "write_state"]


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


def read_endpoint(state_dir: Path) -> StacEndpoint:
    """The endpoint recorded in ``state_dir/state.json`` (raises if nothing was started)."""
    state = read_state(Path(state_dir).absolute())
    if not state:
        raise ServiceError(
            f"the local STAC API is not running (no state.json in {state_dir}); "
            "start it with `nampo stac up`"
        )
    return StacEndpoint(state["url"], state["pg_port"], state["api_port"], state["dsn"])


def read_state(state_dir: Path) -> dict:
    try:
        return json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def write_state(state_dir: Path, state: dict) -> None:
    # Atomic replace, 0600: the dsn holds the password.
    tmp = state_dir / "state.json.tmp"
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(state_dir / "state.json")
