"""What the parts of the local STAC API share: start and stop timeouts, and one-line
errors from logs."""

from __future__ import annotations

from pathlib import Path

__all__ = ["START_TIMEOUT", "STOP_TIMEOUT", "last_line", "log_tail", "one_line", "redact"]

START_TIMEOUT = 60.0
"""Seconds PostgreSQL and the STAC API each get to start."""
STOP_TIMEOUT = 20.0
"""Seconds PostgreSQL and the STAC API each get to stop."""


def log_tail(path: Path, n_bytes: int = 4096) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - n_bytes))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def last_line(text: str) -> str:
    """The last error line of a log (hints follow errors in PostgreSQL's output)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [
        line
        for line in lines
        if any(word in line.lower() for word in ("error", "fatal", "panic", "exception"))
    ]
    return (errors or lines or ["(no output)"])[-1]


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {last_line(str(exc))}"


def redact(dsn: str) -> str:
    head, sep, tail = dsn.rpartition("@")
    return f"postgresql://postgres:***@{tail}" if sep else dsn
