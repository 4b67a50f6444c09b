"""What the cloud stand-in does wrong on purpose: latency, bandwidth, 503s, dropped
connections, expired signatures (switchable while it serves)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass(frozen=True)
class Faults:
    """The stand-in's fault layer (frozen: swap a new one in with ``server.faults = ...``).

    Examples
    --------
    >>> Faults(latency_ms=40).latency_ms
    40.0
    >>> Faults(error_share=0.05, drop_share=0.01, seed=1).error_share
    0.05
    """

    latency_ms: float = 0.0
    """Milliseconds each request waits before its answer (a cloud round trip is 20-80)."""
    bandwidth_mbps: float | None = None
    """Megabits per second per connection while a body is sent (None: unlimited)."""
    error_share: float = 0.0
    """Share of requests answered 503 SlowDown (as S3 answers under load)."""
    drop_share: float = 0.0
    """Share of requests whose connection is reset without an answer."""
    seed: int = 0
    """Seed of the draws that pick the failing requests (a run can be repeated)."""
    burst: int = 0
    """The first `burst` requests after these faults are set are answered 503 SlowDown
    (a burst of throttling; deterministic, whatever the seed)."""
    failing: tuple[str, ...] = ()
    """Paths (``/items/<id>/B04.tif``) answered 503 on every request: assets that keep
    failing, whatever the retries."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency_ms", float(self.latency_ms))
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms}")
        if self.bandwidth_mbps is not None and self.bandwidth_mbps <= 0:
            raise ValueError(f"bandwidth_mbps must be > 0 or None, not {self.bandwidth_mbps}")
        for name in ("error_share", "drop_share"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), not {value}")
        if self.error_share + self.drop_share >= 1.0:
            raise ValueError(
                f"error_share + drop_share must be < 1 (every request would fail), not "
                f"{self.error_share + self.drop_share}"
            )

        if not isinstance(self.burst, int) or self.burst < 0:
            raise ValueError(f"burst must be an integer >= 0, not {self.burst!r}")
        for path in self.failing:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"failing paths must start with '/', not {path!r}")

    @property
    def clean(self) -> bool:
        """Whether no request fails on purpose (latency and bandwidth may still apply)."""
        return (
            self.error_share == 0 and self.drop_share == 0 and not self.failing and not self.burst
        )
