"""Before/after change: lasting man-made change between two composites (the store's
baseline and one month), when a period has too few scenes for change dating
(:mod:`nampo.analysis.dating` needs months of each state). Each rule is a sentence in
``docs/change.md``, "Before/after change".

:func:`pair_change` applies the rules (:mod:`.rules`; rule 0, clouds, in :mod:`.clouds`),
:func:`store_pair_change` on a store; :func:`model_change` applies a fitted
:class:`LinearModel` over :func:`pair_features` instead (:mod:`.learned`).
"""

from nampo.analysis.before_after.clouds import obscured
from nampo.analysis.before_after.learned import (
    FEATURES,
    LinearModel,
    local_mean,
    model_change,
    pair_features,
)
from nampo.analysis.before_after.params import (
    BRIGHTENING,
    OTHER,
    TYPES,
    VEGETATION_LOSS,
    WATER_TO_LAND,
    PairParams,
)
from nampo.analysis.before_after.rules import pair_change, store_pair_change

__all__ = [
    "BRIGHTENING",
    "FEATURES",
    "OTHER",
    "TYPES",
    "VEGETATION_LOSS",
    "WATER_TO_LAND",
    "LinearModel",
    "PairParams",
    "local_mean",
    "model_change",
    "obscured",
    "pair_change",
    "pair_features",
    "store_pair_change",
]
