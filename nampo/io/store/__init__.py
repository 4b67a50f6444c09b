"""The Zarr store of a site: creation, unit writes, completion records, activity, runs and
events. The only package that knows Zarr paths and fsspec (docs/store.md)."""

from nampo.io.store.events import EVENT_FILES
from nampo.io.store.layout import COMPRESSOR, LAYOUT_VERSION, StoreLayout
from nampo.io.store.location import StoreLocation
from nampo.io.store.store import Store

__all__ = ["COMPRESSOR", "EVENT_FILES", "LAYOUT_VERSION", "Store", "StoreLayout", "StoreLocation"]
