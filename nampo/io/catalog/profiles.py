"""The STAC APIs nampo knows by name (``local``, ``earth-search``, ``planetary-computer``)
and the hooks that sign their asset hrefs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from nampo.errors import CatalogError
from nampo.io.scenes import NormalisedItem, normalise

__all__ = ["CatalogProfile", "PROFILES", "ProfileSigner", "get_profile", "scene_signer"]


def _sign_planetary_computer(item: dict) -> dict:
    """A copy of `item` whose asset hrefs carry a Planetary Computer SAS token."""
    try:
        import planetary_computer
    except ImportError as exc:
        raise CatalogError(
            "Planetary Computer asset hrefs must be signed, which needs the "
            "'planetary-computer' package (not installed)"
        ) from exc
    signed = copy.deepcopy(item)
    for asset in signed.get("assets", {}).values():
        # sign(str) exists in every release of the package; the dict overload does not.
        asset["href"] = planetary_computer.sign(asset["href"])
    return signed


@dataclass(frozen=True)
class CatalogProfile:
    """A STAC API nampo knows how to search."""

    name: str
    """Short name used on the command line and in settings."""
    url: str | None
    """Root URL of the STAC API; None when it is only known at run time (``local``)."""
    collection: str
    """Collection of Sentinel-2 L2A items in this catalog."""
    signer: Callable[[dict], dict] | None = None
    """Returns a copy of an item whose hrefs can be read (None: hrefs are public)."""

    def sign(self, item: dict) -> dict:
        """`item` with readable hrefs. Sign close to the read: tokens expire (about 45 min)."""
        return self.signer(item) if self.signer is not None else item

    def sign_scene(self, scene: NormalisedItem) -> NormalisedItem:
        """`scene` with readable band hrefs (the same scene when hrefs are public)."""
        if self.signer is None:
            return scene
        return normalise(self.sign(scene.stac))


PROFILES: dict[str, CatalogProfile] = {
    profile.name: profile
    for profile in (
        CatalogProfile("local", None, "sentinel-2-l2a"),
        CatalogProfile(
            "earth-search", "https://earth-search.aws.element84.com/v1", "sentinel-2-l2a"
        ),
        CatalogProfile(
            "planetary-computer",
            "https://planetarycomputer.microsoft.com/api/stac/v1",
            "sentinel-2-l2a",
            signer=_sign_planetary_computer,
        ),
    )
}


def get_profile(name: str) -> CatalogProfile:
    """The profile called `name` (raises CatalogError listing the valid names)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise CatalogError(
            f"unknown catalog {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None


@dataclass(frozen=True)
class ProfileSigner:
    """Signs scenes the way the catalog profile called `profile` does, the profile looked
    up where the signing happens (a Dask worker): only its name travels with the units, so
    the signer pickles whatever the profile's hook is, and each worker process keeps its
    own token cache (``planetary_computer`` caches a token per container).

    Examples
    --------
    >>> ProfileSigner("planetary-computer")                  # doctest: +SKIP
    ProfileSigner(profile='planetary-computer')
    >>> signed = ProfileSigner("planetary-computer")(scene)  # doctest: +SKIP
    """

    profile: str
    """A name of :data:`PROFILES`."""

    def __post_init__(self) -> None:
        get_profile(self.profile)  # an unknown name fails here, on the client

    def __call__(self, scene: NormalisedItem) -> NormalisedItem:
        return get_profile(self.profile).sign_scene(scene)


def scene_signer(name: str) -> ProfileSigner | None:
    """The signer of the profile called `name`, or None when its hrefs are public."""
    return ProfileSigner(name) if get_profile(name).signer is not None else None
