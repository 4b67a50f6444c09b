"""What every part of the scenario format shares: the pydantic base model and the check
of a [lon, lat] ring."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from nampo.sites.definition import ring  # one check of a ring, for sites and scenarios

__all__ = ["LonLat", "Model", "ring"]

LonLat = tuple[float, float]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
