"""Exceptions raised by nampo. Each names the bad value and, where it can, what would be valid."""

__all__ = [
    "CatalogError",
    "CatalogWarning",
    "CubeError",
    "CubeWarning",
    "NampoError",
    "ScenarioError",
    "ServiceError",
    "StoreError",
]


class NampoError(Exception):
    """Base class of every error nampo raises on purpose (the CLI prints these on one line)."""


class ScenarioError(NampoError):
    """A scenario file is malformed or inconsistent (the message names the field)."""


class ServiceError(NampoError):
    """A local service (PostgreSQL, the STAC API) could not be started, reached or stopped."""


class CatalogError(NampoError):
    """A STAC catalog could not be searched or returned something unusable."""


class StoreError(NampoError):
    """A Zarr store cannot be created, written or read (the message names its URL)."""


class CatalogWarning(UserWarning):
    """A STAC item or page was skipped or looks wrong, and the search went on."""


class CubeError(NampoError):
    """A data cube cannot be built from the given scenes, grid and bands."""


class CubeWarning(UserWarning):
    """Scenes were left out of a cube (unreadable assets); the cube was built without them."""
