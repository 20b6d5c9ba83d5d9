"""`percentage`: a rate on the transaction amount the usage carries (Lago's percentage and
graduated-percentage charges, payment-processing style fees).

Flat form: each transaction costs `rate`% of its amount plus `fixed_fee`, held between
`per_transaction_min` and `per_transaction_max` when they are given. A usage item carries the
total amount of its calls; with per-transaction bounds its calls are taken as transactions of
equal amount (the amount divided by the calls, which must be exact: keep transactions of
different amounts in separate usage items, as individual call records are).

Graduated form (`tiers` with a `rate` each): the period's total transaction amount is split over
the tiers by their bounds (in money), each part costs its tier's rate, and the flat amount of
every tier entered is added.
"""

from __future__ import annotations

from decimal import Decimal, DecimalException

from ..bill import TierCharge
from ..errors import RatingError
from ..exact import EXACT
from ..formatting import format_count, format_price
from .base import ZERO, Priced, Pricer, add, mul, spans


def percent_of(rate: Decimal, amount: Decimal) -> Decimal:
    return mul(rate, amount).scaleb(-2, context=EXACT)


class Percentage(Pricer):
    model = "percentage"
    needs_basis = True

    def __init__(self, category):
        super().__init__(category)
        terms = category.percentage
        self.rate = terms.rate
        self.fixed_fee = terms.fixed_fee
        self.low, self.high = terms.per_transaction_min, terms.per_transaction_max
        self.bounds = tuple(t.up_to for t in category.tiers)
        self.tiers = tuple((t.rate, t.flat_amount) for t in category.tiers)
        self.graduated = terms.rate is None

    def price(self, units, basis=None) -> Priced:
        basis = basis or ()
        value = ZERO
        for _, amount in basis:
            value = add(value, amount)
        if self.graduated:
            return self._graduated(units, value)
        charges = [TierCharge(1, units, ZERO, percent_of(self.rate, value), basis=value, rate=self.rate,
                              note=f"{format_price(self.rate)}% of the transaction amount")]
        if self.fixed_fee:
            charges.append(TierCharge(0, units, self.fixed_fee, mul(self.fixed_fee, units),
                                      note="fixed fee per transaction"))
        if self.low is not None or self.high is not None:
            raised, lowered, n_raised, n_lowered = self._bounds(basis)
            if n_raised:
                charges.append(TierCharge(0, n_raised, ZERO, raised,
                                          note=f"raised to the minimum of {format_price(self.low)} per transaction"))
            if n_lowered:
                charges.append(TierCharge(0, n_lowered, ZERO, lowered,
                                          note=f"held to the maximum of {format_price(self.high)} per transaction"))
        total = ZERO
        for charge in charges:
            total = add(total, charge.amount)
        return Priced(1, ZERO, tuple(charges), total)

    def _bounds(self, basis):
        """What the per-transaction minimum adds and the maximum takes off, and to how many transactions."""
        raised = lowered = ZERO
        n_raised = n_lowered = 0
        for transactions, amount in basis:
            if not transactions:
                continue
            try:
                each = EXACT.divide(amount, transactions)
            except DecimalException:
                raise RatingError(f"a usage item's amount {amount} over {format_count(transactions)} transactions "
                                  "is not one exact amount per transaction, which the per-transaction minimum "
                                  "and maximum need; give transactions of different amounts as separate usage "
                                  "items") from None
            fee = add(percent_of(self.rate, each), self.fixed_fee)
            if self.low is not None and fee < self.low:
                raised = add(raised, mul(EXACT.subtract(self.low, fee), transactions))
                n_raised += transactions
            elif self.high is not None and fee > self.high:
                lowered = add(lowered, mul(EXACT.subtract(self.high, fee), transactions))
                n_lowered += transactions
        return raised, lowered, n_raised, n_lowered

    def _graduated(self, units, value) -> Priced:
        charges = []
        total = ZERO
        for number, span, _ in spans(self.bounds, value):
            rate, flat = self.tiers[number - 1]
            part = percent_of(rate, span)
            if flat is not None and span:
                part = add(part, flat)
            else:
                flat = None
            charges.append(TierCharge(number, 0, ZERO, part, flat, basis=span, rate=rate,
                                      note=f"{format_price(rate)}% of the transaction amount in this tier"))
            total = add(total, part)
        return Priced(charges[-1].tier, ZERO, tuple(charges), total)
