"""The scenario's ground: land-cover classes, mixtures, the areas of the base map and the
facilities."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from nampo.scenario.model.base import LonLat, Model, ring

__all__ = [
    "CLASS_CODES",
    "GROUND_CLASSES",
    "Area",
    "Cover",
    "Facility",
    "LandCover",
    "LandcoverSpec",
    "Mixture",
    "WaterType",
]


class LandCover(StrEnum):
    """Surface classes the renderer knows. Their codes are the values of truth class maps."""

    water = "water"
    vegetation = "vegetation"
    bare = "bare"
    paved = "paved"
    pier = "pier"
    roof = "roof"
    coal = "coal"
    tank = "tank"
    containers = "containers"
    ice = "ice"
    ship = "ship"

    @property
    def code(self) -> int:
        return CLASS_CODES[self]


CLASS_CODES: dict[LandCover, int] = {c: i + 1 for i, c in enumerate(LandCover)}
"""Class code of each land cover in the truth rasters (0 = outside the site / no data)."""

# Classes a scenario may paint on the ground; ice and ships only appear through events.
GROUND_CLASSES = [c for c in LandCover if c not in (LandCover.ice, LandCover.ship)]


class WaterType(StrEnum):
    """What kind of water an area is: it decides the water's spectrum in every band."""

    turbid_estuary = "turbid_estuary"
    """Sediment-laden river mouth (Taedong, Han, Elbe, Loire): bright in green and red."""
    coastal = "coastal"
    """Coastal sea a few km from shore: moderately clear, some sediment and algae."""
    open_sea = "open_sea"
    """Clear sea off a rocky or sandy coast: blue, near black from the red on."""


class Mixture(Model):
    """A heterogeneous surface (a town, a yard): random patches of several classes."""

    classes: dict[LandCover, float]
    grain_m: float = Field(default=20.0, ge=5, le=500, description="Typical patch size.")

    @field_validator("classes")
    @classmethod
    def _weights(cls, v: dict[LandCover, float]) -> dict[LandCover, float]:
        for c in v:
            if c not in GROUND_CLASSES:
                raise ValueError(f"class {c.value!r} cannot be painted on the ground")
        if abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"shares must add up to 1, got {sum(v.values()):.3f}")
        return v


# A class name, or a mapping describing a mixture: dispatch on the shape so that errors
# point at the right one instead of listing both alternatives.
Cover = Annotated[
    Annotated[LandCover, Tag("class-name")] | Annotated[Mixture, Tag("mixture")],
    Discriminator(lambda v: "mixture" if isinstance(v, dict | Mixture) else "class-name"),
]


class Area(Model):
    """One polygon of the base land-cover map."""

    cover: Cover = Field(alias="class")
    polygon: list[LonLat] | None = None
    circle: tuple[float, float, float] | None = Field(
        default=None, description="[lon, lat, diameter_m] for round objects (tanks)."
    )
    water: WaterType | None = Field(
        default=None, description="Kind of water of a `water` area (default: landcover.water)."
    )
    note: str = ""

    @model_validator(mode="after")
    def _one_shape(self) -> Area:
        if (self.polygon is None) == (self.circle is None):
            raise ValueError("give exactly one of `polygon` or `circle`")
        if self.water is not None and self.cover != LandCover.water:
            raise ValueError("`water` is only for areas of class water")
        return self

    @field_validator("cover")
    @classmethod
    def _ground(cls, v):
        if isinstance(v, LandCover) and v not in GROUND_CLASSES:
            raise ValueError(f"class {v.value!r} cannot be painted on the ground")
        return v

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v: list[LonLat] | None) -> list[LonLat] | None:
        if v is not None:
            ring(v)
        return v


class LandcoverSpec(Model):
    default: LandCover = LandCover.vegetation
    water: WaterType = Field(
        default=WaterType.turbid_estuary,
        description="Kind of water wherever an area does not say (also water no area drew).",
    )
    areas: list[Area] = Field(default_factory=list)


class Facility(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    polygon: list[LonLat]
    berths: list[list[LonLat]] = Field(
        default_factory=list,
        description="Polygons where ships moor (long and thin: a ship lies along the long axis).",
    )

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v):
        ring(v)
        return v

    @field_validator("berths")
    @classmethod
    def _berths(cls, v):
        for i, b in enumerate(v):
            ring(b, f"berth {i}")
        return v
