"""The pricing step of a tariff, generated as Python source once per rule version, and the two
calculations it calls: the units a free quota and resource packs take first, and graduated tiers.
`rating.Tariff` compiles it; `rating.rate` runs it for every account-month."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .bill import PackUse, TierCharge, builder
from .exact import EXACT

if TYPE_CHECKING:
    from .rating import Tariff, _Category

_mul = EXACT.multiply
_add = EXACT.add
_ZERO = Decimal(0)
_new_tier_charge = builder(TierCharge)


def compile_pricing(t: Tariff):
    """Generate the tariff's pricing step as straight-line Python: one block per category with its
    tier bounds as literals and its mode, free quota and rounding decided once, here, instead of
    for every account. Returns ``price_lines(billed, grant_free, pack_queues)`` →
    ``(rated, subtotal, charged)``, where `billed` lists billable calls by category position (-1: unused) and
    `rated` holds one tuple per category used, in price-book order (see `rating._build_lines`).

    Only names and numbers that the loader validated go into the source; prices stay Decimal
    objects passed in the namespace, never text.
    """
    env = {"ZERO": _ZERO, "mul": _mul, "add": _add, "quantize": t.quantize, "Q": t.quantum,
           "prepaid": prepaid, "graduated": graduated}
    body = ["def price_lines(billed, grant_free, pack_queues, basis):",
            "    rated = []", "    append = rated.append",
            "    subtotal = charged = ZERO"]
    for pos, cat in enumerate(t.categories):
        env[f"C{pos}"] = cat
        body += [f"    n = billed[{pos}]", "    if n >= 0:", "        payg, free_used, packs_used = n, 0, ()"]
        condition = "grant_free or pack_queues" if cat.free_quota else "pack_queues"
        body += [f"        if {condition}:",
                 f"            payg, free_used, packs_used = prepaid(C{pos}, n, grant_free, pack_queues)"]
        if cat.pricer is not None:
            env[f"M{pos}"] = cat.pricer.price
            argument = f"basis[{pos}]" if pos in t.basis_pos else "None"
            body += [f"        number, price, charges, amount = M{pos}(payg, {argument})"]
        elif cat.volume:
            for i, (bound, price) in enumerate(cat.tiers):
                env[f"P{pos}_{i}"] = price
                keyword = "if" if i == 0 else "elif"
                test = f"{keyword} payg <= {int(bound)}:" if bound is not None else ("else:" if i else "if True:")
                body += [f"        {test}", f"            number, price = {i + 1}, P{pos}_{i}"]
            body += ["        amount = mul(price, payg)", "        charges = None"]
        else:
            body += [f"        charges, amount = graduated(C{pos}.tiers, payg)",
                     "        number, price = charges[-1].tier, charges[-1].unit_price"]
        body += ["        subtotal = add(subtotal, amount)"]
        if t.per_line:
            body += ["        charge = quantize(amount, Q)", "        charged = add(charged, charge)"]
        else:
            body += ["        charge = amount"]
        body += [f"        append(({pos}, n, free_used, packs_used, payg, number, price, amount, charge, charges))"]
    body += [f"    return rated, subtotal, {'charged' if t.per_line else 'subtotal'}"]
    exec(compile("\n".join(body) + "\n", f"<pricing of {t.rules_name}>", "exec"), env)  # noqa: S102
    return env["price_lines"]


def prepaid(cat: _Category, billable: int, grant_free: bool, pack_queues) -> tuple[int, int, tuple[PackUse, ...]]:
    """Billable units go to the free quota first, then to packs (soonest-expiring first),
    and what is left is pay-as-you-go; that remainder alone decides the tier.
    Returns (pay-as-you-go units, free quota used, packs used)."""
    payg = billable
    free_used = min(payg, cat.free_quota) if grant_free else 0
    payg -= free_used
    uses = []
    for pack in (pack_queues.get(cat.id, ()) if pack_queues else ()):
        if payg == 0:
            break
        used = min(payg, pack.units_left)
        if used:
            uses.append(PackUse(pack.pack_id, used, pack.units_left - used))
            payg -= used
    return payg, free_used, tuple(uses)


def graduated(tiers, units: int) -> tuple[tuple[TierCharge, ...], Decimal]:
    """Each tier prices the units inside it; always at least one (possibly empty) tier."""
    charges = []
    amount = _ZERO
    lower = 0
    left = units
    for number, (bound, price) in enumerate(tiers, 1):
        span = left if bound is None else min(left, bound - lower)
        part = _mul(price, span)
        charges.append(_new_tier_charge(number, span, price, part))
        amount = _add(amount, part)
        left -= span
        if left == 0:
            break
        lower = bound
    return tuple(charges), amount
