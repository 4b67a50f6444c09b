"""A site's climate as change dating needs it: the months its water may freeze and the
months its vegetation is reliably green (``docs/change.md``, rule 4).

A site definition may state both; what it leaves out is derived from the latitude of the
outline's centre by the rule of :func:`derived_climate` (documented in ``docs/sites.md``).
The rule is coarse on purpose: it is a default to be overridden by someone who knows the
place, never fitted to any scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Climate", "derived_climate"]

NORTH_WINTER = (12, 1, 2, 3)
NORTH_LONG_WINTER = (11, 12, 1, 2, 3, 4)
NORTH_GROWING = (5, 6, 7, 8, 9)
NORTH_SHORT_GROWING = (6, 7, 8)


@dataclass(frozen=True)
class Climate:
    """The seasons of a site."""

    ice_months: tuple[int, ...]
    """Months in which the site's water may freeze (none where it never freezes)."""
    growing_months: tuple[int, ...]
    """Months in which its vegetation is reliably green (every month where evergreen)."""
    derived: tuple[str, ...] = ()
    """Which of the two fields came from the latitude rule rather than the definition."""

    def describe(self) -> str:
        def months(ms: tuple[int, ...]) -> str:
            return ", ".join(str(m) for m in ms) if ms else "none"

        def how(field: str) -> str:
            return " (derived from the latitude)" if field in self.derived else ""

        return (
            f"ice months: {months(self.ice_months)}{how('ice_months')}; "
            f"growing months: {months(self.growing_months)}{how('growing_months')}"
        )


def _south(months: tuple[int, ...]) -> tuple[int, ...]:
    """The same season six months later (the southern hemisphere)."""
    return tuple((m + 5) % 12 + 1 for m in months)


def derived_climate(lat: float) -> Climate:
    """The seasons of a site at latitude `lat` (degrees; negative in the south).

    - Tropics (|lat| < 23.5): no ice; vegetation green every month.
    - 23.5 <= |lat| < 35: no sea ice; growing season of the temperate zone.
    - 35 <= |lat| < 55: water may freeze in the four coldest months (Dec-Mar in the
      north); vegetation green May-Sep.
    - |lat| >= 55: ice in the six coldest months (Nov-Apr), vegetation green Jun-Aug.

    Southern sites take the same seasons six months later.

    >>> derived_climate(38.7).ice_months, derived_climate(38.7).growing_months
    ((12, 1, 2, 3), (5, 6, 7, 8, 9))
    >>> derived_climate(-40.0).ice_months
    (6, 7, 8, 9)
    >>> derived_climate(1.3).ice_months, len(derived_climate(1.3).growing_months)
    ((), 12)
    """
    a = abs(lat)
    if a < 23.5:
        ice: tuple[int, ...] = ()
        growing = tuple(range(1, 13))
    elif a < 35:
        ice, growing = (), NORTH_GROWING
    elif a < 55:
        ice, growing = NORTH_WINTER, NORTH_GROWING
    else:
        ice, growing = NORTH_LONG_WINTER, NORTH_SHORT_GROWING
    if lat < 0 and growing != tuple(range(1, 13)):
        ice, growing = _south(ice), _south(growing)
    return Climate(ice, growing, ("ice_months", "growing_months"))
