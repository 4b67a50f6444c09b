"""Typed flow parameters: Prefect turns these annotations into the JSON schema of each
deployment, so the UI draws a form (dropdowns for the choices) and the server refuses
values that do not fit before a run is created."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from nampo.run.units import parse_month

SiteName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_-]*$",
        max_length=64,
        description="a site of the registry (`nampo site list`)",
        examples=["nampo"],
    ),
]
"""A registered site's name. Sites are data: the name is checked against the registry when
a run starts; the deployments' forms offer the registered names (flows.sites)."""

CatalogName = Literal["local", "earth-search", "planetary-computer"]
"""Keys of :data:`nampo.io.catalog.PROFILES` (a test keeps them equal)."""

LoaderName = Literal["stackstac", "odc"]

StalePolicy = Annotated[
    Literal["recompute", "leave"],
    Field(
        description="units of the period written by an older product version: recompute "
        "them, or leave them and report (`nampo store status`)"
    ),
]

Month = Annotated[
    str,
    Field(
        pattern=r"^(19|20)\d\d-(0[1-9]|1[0-2])$",
        description="a month, YYYY-MM",
        examples=["2017-05"],
    ),
]

CloudLimit = Annotated[
    float | None,
    Field(ge=0, le=100, description="largest eo:cloud_cover of a scene, in percent"),
]

Workers = Annotated[
    int, Field(ge=1, le=64, description="worker processes of the local Dask cluster")
]

SiteLimit = Annotated[
    int, Field(ge=1, le=16, description="sites monitored at once (each a child flow run)")
]

LookbackMonths = Annotated[
    int, Field(ge=1, le=24, description="months before the current one to check for new scenes")
]


def month(text: str) -> dt.date:
    return parse_month(text)
