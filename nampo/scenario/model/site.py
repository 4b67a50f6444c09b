"""Where and when a scenario is seen: its grid, period, platforms, orbit, MGRS tiles and
climate."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from nampo.grid import Grid
from nampo.scenario.model.base import Model
from nampo.sites.definition import on_s2_lattice, utm_crs

__all__ = [
    "LAUNCHES",
    "Acquisitions",
    "Climate",
    "GridSpec",
    "MgrsTile",
    "Period",
    "Platform",
]


class GridSpec(Model):
    crs: str = Field(description="Projected CRS as 'EPSG:<code>' (the UTM zone of the site).")
    resolution: Literal[10] = 10
    origin: tuple[float, float] = Field(description="[x, y] of the upper-left corner, in the CRS.")
    size: tuple[int, int] = Field(description="[columns, rows] of 10 m pixels.")

    @field_validator("crs")
    @classmethod
    def _epsg(cls, v: str) -> str:
        return utm_crs(v)

    @field_validator("origin")
    @classmethod
    def _aligned(cls, v: tuple[float, float]) -> tuple[float, float]:
        return on_s2_lattice(v)

    @field_validator("size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 60 or v[1] < 60 or v[0] % 6 or v[1] % 6:
            raise ValueError(f"must be at least 60 and multiples of 6 (60 m bands), got {list(v)}")
        if v[0] * v[1] > 4_000_000:
            raise ValueError(f"{v[0]}x{v[1]} pixels is larger than the 4 Mpx a scenario may have")
        return v

    def to_grid(self) -> Grid:
        return Grid(
            int(self.crs[5:]),
            float(self.resolution),
            self.origin[0],
            self.origin[1],
            self.size[0],
            self.size[1],
        )


class Period(Model):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        if self.start < dt.date(2015, 6, 23):
            raise ValueError(f"start {self.start} is before Sentinel-2A's launch (2015-06-23)")
        return self


LAUNCHES = {
    "sentinel-2a": dt.date(2015, 6, 23),
    "sentinel-2b": dt.date(2017, 3, 7),
    "sentinel-2c": dt.date(2024, 9, 5),
}


class Platform(Model):
    name: Literal["sentinel-2a", "sentinel-2b", "sentinel-2c"]
    first: dt.date = Field(description="Date of this platform's first acquisition of the site.")
    last: dt.date | None = Field(default=None, description="Last acquisition (open if omitted).")
    revisit_days: int = Field(default=10, ge=1, le=30)

    @model_validator(mode="after")
    def _launched(self) -> Platform:
        if self.first < LAUNCHES[self.name]:
            raise ValueError(
                f"first {self.first} is before {self.name}'s launch ({LAUNCHES[self.name]})"
            )
        if self.last is not None and self.last < self.first:
            raise ValueError(f"last {self.last} is before first {self.first}")
        return self


class MgrsTile(Model):
    code: str = Field(pattern=r"^\d{2}[C-X][A-Z]{2}$")
    x_origin: float = Field(description="x of the tile's west edge in the site CRS (e.g. 699960).")
    y_origin: float = Field(
        description="y of the tile's north edge in the site CRS (e.g. 4300020)."
    )
    size: float = 109800.0


class Acquisitions(Model):
    platforms: list[Platform] = Field(min_length=1)
    relative_orbit: int = Field(ge=1, le=143)
    overpass_utc: dt.time = Field(description="UTC time of the overpass over the site.")
    tiles: list[MgrsTile] = Field(min_length=1)
    partial_coverage: float = Field(
        default=0.08,
        ge=0,
        le=1,
        description="Share of acquisitions whose swath or datastrip edge cuts the site.",
    )
    orbit_heading: float = Field(
        default=-167.0, description="Ground-track heading in degrees (descending orbit)."
    )


class Climate(Model):
    cloud_cover: list[float] = Field(
        min_length=12,
        max_length=12,
        description="Mean cloud fraction of a scene, per calendar month (Jan..Dec).",
    )
    fog: list[float] = Field(
        default=[0.0] * 12,
        min_length=12,
        max_length=12,
        description="Probability of a thin fog/haze layer over the site, per month.",
    )
    cirrus: float = Field(default=0.1, ge=0, le=1, description="Probability of thin cirrus.")
    cloud_height_m: tuple[float, float] = (600.0, 2500.0)
    phenology: Literal["temperate", "evergreen"] = Field(
        default="temperate",
        description="Vegetation's year: temperate (green May-October, dormant in winter) or "
        "evergreen (humid tropics: green all year, a shallow dip in the drier months).",
    )

    @field_validator("cloud_height_m")
    @classmethod
    def _heights(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 15000:
            raise ValueError(
                f"must be [low, high] metres with 0 < low <= high <= 15000, got {list(v)}"
            )
        return v

    @field_validator("cloud_cover", "fog")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0 <= x <= 1]
        if bad:
            raise ValueError(f"values must be fractions between 0 and 1, got {bad}")
        return v
