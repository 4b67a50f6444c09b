"""The local STAC API: PostgreSQL/PostGIS + pgstac, served by stac-fastapi-pgstac, all in
one state folder on loopback (docs/catalog.md, "The local STAC API").

Examples
--------
>>> endpoint = start(Path("/tmp/stac"))                        # doctest: +SKIP
>>> load(endpoint, Path("archives/nampo-small"))               # doctest: +SKIP
>>> stop(Path("/tmp/stac"))                                    # doctest: +SKIP
"""

from nampo.services.pgstac.database import load
from nampo.services.pgstac.endpoint import ServiceStatus, StacEndpoint, read_endpoint
from nampo.services.pgstac.postgres import PG_BIN, PG_DATABASE, PG_USER
from nampo.services.pgstac.stack import start, status, stop

__all__ = [
    "PG_BIN",
    "PG_DATABASE",
    "PG_USER",
    "ServiceStatus",
    "StacEndpoint",
    "load",
    "read_endpoint",
    "start",
    "status",
    "stop",
]
