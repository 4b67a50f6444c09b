"""STAC catalogs nampo searches: named profiles (:mod:`.profiles`), retrying HTTP
(:mod:`.retries`), paging and search (:mod:`.searching`); docs/catalog.md.

This is the only package that imports ``pystac_client``. Items travel as plain dicts
(``items_as_dicts``): ``pystac.Item.from_dict`` migrates ``proj:epsg`` to ``proj:code``,
which stackstac cannot read. :func:`search` returns those dicts; :func:`search_scenes`
returns them normalised (:mod:`nampo.io.scenes`) for the cube loader.

Examples
--------
>>> from datetime import date
>>> items = search("earth-search", None, {"type": "Point", "coordinates": [125.38, 38.73]},
...                date(2018, 1, 1), date(2018, 3, 31), max_cloud=20)   # doctest: +SKIP
>>> items[0]["properties"]["datetime"]                                  # doctest: +SKIP
'2018-01-05T02:25:21.456000Z'
"""

from nampo.io.catalog.profiles import (
    PROFILES,
    CatalogProfile,
    ProfileSigner,
    get_profile,
    scene_signer,
)
from nampo.io.catalog.retries import RetryPolicy, parse_retry_after
from nampo.io.catalog.searching import search, search_scenes
from nampo.io.scenes import BandAsset, NormalisedItem, normalise

__all__ = [
    "PROFILES",
    "BandAsset",
    "CatalogProfile",
    "NormalisedItem",
    "ProfileSigner",
    "RetryPolicy",
    "get_profile",
    "normalise",
    "parse_retry_after",
    "search",
    "scene_signer",
    "search_scenes",
]
