"""A category's maximum and minimum spend per period (Lago's charge minimum, OpenMeter's
commitments per rate card): what the category comes to after its discounts is held down to the
maximum, then raised to the minimum. Both apply to a category with any usage in the period."""

from __future__ import annotations

from ..exact import EXACT


def apply(state, book, own, category):
    pos = state.position[category.id]
    maximum, max_scope = _limit(own.maximum_spend, category.id, category.maximum_spend)
    minimum, min_scope = _limit(own.minimum_spend, category.id, category.minimum_spend)
    total = state.category_total[pos]
    if maximum is not None and total > maximum:
        state.add("maximum-spend", f"{category.name}: maximum spend", category.id, total,
                  EXACT.subtract(maximum, total),
                  f"{state.money(total)} held to the maximum of {state.money(maximum)}", max_scope)
    total = state.category_total[pos]
    if minimum is not None and total < minimum:
        state.add("minimum-spend", f"{category.name}: minimum spend", category.id, total,
                  EXACT.subtract(minimum, total),
                  f"{state.money(total)} raised to the minimum of {state.money(minimum)}", min_scope)


def _limit(own, cid, listed):
    if cid in own:
        return own[cid], "account"
    return listed, "list"
