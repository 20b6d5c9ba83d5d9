"""Price models: how one category turns a period's units into an amount.

Each model is a small module with one `Pricer` (see `base`); the price book names a category's
model in its `model` key, and `pricer_for` builds the pricer from the validated category. The
rating core keeps its own generated fast path for plain per-unit tiered categories (whole units,
no flat amounts): those never reach a Pricer object, so a price book that uses no other model
pays nothing for the others. Everything else in the engine that must price units (explain,
lint, the settlement's list-price cost) asks the pricer, so there is one arithmetic per model.
"""

from __future__ import annotations

from .base import Priced, Pricer
from .package import Package
from .percentage import Percentage
from .tiered import Tiered

MODELS: dict[str, type[Pricer]] = {"tiered": Tiered, "package": Package, "percentage": Percentage}


def pricer_for(category) -> Pricer:
    """The pricer of a validated `model.Category`."""
    return MODELS[category.model](category)


__all__ = ["MODELS", "Package", "Percentage", "Priced", "Pricer", "Tiered", "pricer_for"]
