"""The cloud stand-in: a folder of COGs served over HTTP from 127.0.0.1 like object
storage, with a switchable fault layer (docs/cube.md, "Reading from the cloud")."""

from nampo.services.assets.faults import Faults
from nampo.services.assets.server import AssetServer, Served, Traffic

__all__ = ["AssetServer", "Faults", "Served", "Traffic"]
