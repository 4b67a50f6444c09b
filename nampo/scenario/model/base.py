"""What every part of the scenario format shares: the pydantic base model and the check
of a [lon, lat] ring."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from shapely.geometry import Polygon
from shapely.validation import explain_validity

__all__ = ["LonLat", "Model", "ring"]

LonLat = tuple[float, float]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def ring(points: list[LonLat], where: str = "polygon") -> Polygon:
    if len(points) < 3:
        raise ValueError(f"{where} needs at least 3 [lon, lat] points, got {len(points)}")
    for lon, lat in points:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{where} point [{lon}, {lat}] is not a [lon, lat] pair in degrees")
    poly = Polygon(points)
    if not poly.is_valid:
        raise ValueError(f"{where} is not a valid polygon: {explain_validity(poly)}")
    return poly
