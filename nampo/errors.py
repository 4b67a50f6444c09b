"""Exceptions raised by nampo. Each names the bad value and, where it can, what would be valid."""


class NampoError(Exception):
    """Base class of every error nampo raises on purpose (the CLI prints these on one line)."""


class ScenarioError(NampoError):
    """A scenario file is malformed or inconsistent (the message names the field)."""


class ServiceError(NampoError):
    """A local service (PostgreSQL, the STAC API) could not be started, reached or stopped."""


class CatalogError(NampoError):
    """A STAC catalog could not be searched or returned something unusable."""


class CatalogWarning(UserWarning):
    """A STAC item or page was skipped or looks wrong, and the search went on."""
