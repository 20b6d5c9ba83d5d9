"""Adjustments: what happens to a bill after its categories are priced, in one declared order.

Modelled on OpenMeter's rating, where price models produce lines and "mutators" then apply
discounts, commitments and credits in a fixed sequence. Here every step is one small module, and
the order is (docs/rules.md, "Adjustments", says the same):

1. `discounts` on a category, in the order written, each on what the previous ones left;
2. `spend`: the category's maximum spend, then its minimum spend (a charge up to the minimum,
   for a category with any usage in the period);
3. `discounts` on the whole bill, in the order written, on the lines and steps 1-2;
4. `commitment`: the bill's minimum commitment; a shortfall is its own line;
5. `credits`, in the order written: each takes off at most what the bill still comes to, unless
   its rule lets it take the bill below zero.

Each step works on the amounts the bill adds up (a line's `charge`: rounded in per-line mode,
exact otherwise) and produces `bill.Adjustment` lines. An account's negotiated terms (an
`account-terms` file) replace the price book's list terms of the same kind and target: its
discounts on a category replace the book's discounts on that category, its bill discounts the
book's bill discounts, its commitment the book's, its credits the book's, its spend limits of a
category the book's limits of that category. Terms apply in the periods their windows cover.
"""

from __future__ import annotations

from ..model import NO_TERMS
from . import commitment, credits, discounts, spend
from .base import State


class Adjuster:
    """The adjustments of one tariff (a price book, and the account terms in force with it)."""

    def __init__(self, book, categories, account_terms, quantize):
        self.currency = book.currency
        self.categories = categories  # the book's categories (model.Category), in price book order
        self.position = {c.id: pos for pos, c in enumerate(categories)}
        self.book_terms = book.terms
        self.account_terms = account_terms.accounts if account_terms is not None else {}
        self.quantize = quantize  # amount → charge: the policy's rounding in per-line mode, else None

    def terms_of(self, account: str):
        """(list terms, the account's terms) for `account`."""
        return self.book_terms, self.account_terms.get(account, NO_TERMS)

    def __call__(self, rated, account: str, period: str):
        """The adjustments of one bill, from its rated lines (see `pricing_code.compile_pricing`)."""
        state = State(self, rated, period)
        book, own = self.terms_of(account)
        for pos in state.used:
            category = self.categories[pos]
            discounts.apply(state, book, own, category.id)
            spend.apply(state, book, own, category)
        discounts.apply(state, book, own, None)
        commitment.apply(state, book, own)
        credits.apply(state, book, own)
        return state.result()


def needed(book, account_terms) -> bool:
    """Whether a tariff needs an Adjuster at all: list terms, a category's spend limit, or account terms."""
    return bool(book.terms) or any(c.minimum_spend is not None or c.maximum_spend is not None
                                   for c in book.categories.values()) or bool(account_terms and account_terms.accounts)
