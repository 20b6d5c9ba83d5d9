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


def _price_blocks(t: Tariff, env: dict, indent: str, packs: bool = True) -> list[str]:
    """The straight-line source that prices `billed` (billable units by category position; -1:
    unused) into `rated`, `subtotal` and `charged`: one block per category with its tier bounds as
    literals and its mode, free quota and rounding decided once, here, instead of for every
    account. Without `packs`, the source is for a bill with no resource packs (`pack_queues` is
    never read). The names it needs go into `env`."""
    body = ["rated = []", "append = rated.append", "subtotal = charged = ZERO"]
    count = len(t.categories)
    # One unpacking instead of a subscript a category: most accounts use a few categories of many.
    body += [f"{', '.join(f'n{pos}' for pos in range(count))}{',' if count == 1 else ''} = billed"] if count else []
    for pos, cat in enumerate(t.categories):
        env[f"C{pos}"] = cat
        n = f"n{pos}"
        body += [f"if {n} >= 0:"]
        condition = ("grant_free or pack_queues" if packs else "grant_free") if cat.free_quota else \
            ("pack_queues" if packs else None)
        if condition is None:  # nothing can be prepaid: every billable unit is pay-as-you-go
            payg, free_used, packs_used = n, "0", "()"
        else:
            payg, free_used, packs_used = "payg", "free_used", "packs_used"
            body += [f"    payg, free_used, packs_used = {n}, 0, ()", f"    if {condition}:",
                     f"        payg, free_used, packs_used = prepaid(C{pos}, {n}, grant_free, pack_queues)"]
        if cat.pricer is not None:
            env[f"M{pos}"] = cat.pricer.price
            argument = f"basis[{pos}]" if pos in t.basis_pos else "None"
            body += [f"    number, price, charges, amount = M{pos}({payg}, {argument})"]
            charges = "charges"
        elif cat.volume:
            for i, (bound, price) in enumerate(cat.tiers):
                env[f"P{pos}_{i}"] = price
                keyword = "if" if i == 0 else "elif"
                test = f"{keyword} {payg} <= {int(bound)}:" if bound is not None else ("else:" if i else "if True:")
                body += [f"    {test}", f"        number, price = {i + 1}, P{pos}_{i}"]
            body += [f"    amount = mul(price, {payg})"]
            charges = "None"
        else:
            body += [f"    charges, amount = graduated(C{pos}.tiers, {payg})",
                     "    number, price = charges[-1].tier, charges[-1].unit_price"]
            charges = "charges"
        body += ["    subtotal = add(subtotal, amount)"]
        if t.per_line:
            body += ["    charge = quantize(amount, Q)", "    charged = add(charged, charge)"]
            charge = "charge"
        else:
            charge = "amount"
        body += [f"    append(({pos}, {n}, {free_used}, {packs_used}, {payg}, number, price, amount, {charge}, {charges}))"]
    if not t.per_line:
        body += ["charged = subtotal"]
    return [indent + line for line in body]


def _namespace(t: Tariff) -> dict:
    return {"ZERO": _ZERO, "mul": _mul, "add": _add, "quantize": t.quantize, "Q": t.quantum,
            "prepaid": prepaid, "graduated": graduated}


def _define(t: Tariff, body: list[str], env: dict, name: str):
    exec(compile("\n".join(body) + "\n", f"<{name} of {t.rules_name}>", "exec"), env)  # noqa: S102
    return env[name]


def compile_pricing(t: Tariff):
    """The tariff's pricing step as straight-line Python (`_price_blocks`):
    ``price_lines(billed, grant_free, pack_queues, basis)`` → ``(rated, subtotal, charged)``, where
    `rated` holds one tuple per category used, in price-book order (see `rating._build_lines`).
    Only names and numbers that the loader validated go into the source; prices stay Decimal
    objects passed in the namespace, never text."""
    env = _namespace(t)
    body = ["def price_lines(billed, grant_free, pack_queues, basis):", *_price_blocks(t, env, "    "),
            "    return rated, subtotal, charged"]
    return _define(t, body, env, "price_lines")


# Counting one account's usage by category position: the loop of `rating.rate`, for usage keyed by API
# (no outcomes; the APIs are distinct) and for usage items. `unknown` collects APIs the rules do not list.
_COUNT_KEYED = """\
    billed = NO_USAGE.copy()
    unknown = None
    for api, calls in usage.items():
        if type(calls) is not int or calls < 0:
            calls = quantity(t, api, calls)
        pos = billable_pos(api)
        if pos is not None:
            was = billed[pos]
            billed[pos] = was + calls if was > 0 else calls
            continue
        pos = free_pos(api)
        if pos is None:
            if unknown is None:
                unknown = {}
            unknown[api] = calls
        elif billed[pos] < 0:
            billed[pos] = 0"""

_COUNT_ITEMS = """\
    usage = usage if type(usage) is tuple else tuple(usage)
    billed = NO_USAGE.copy()
    unknown = None
    for item in usage:
        if type(item) is UsageItem:
            api, calls, outcome = item.api, item.calls, item.outcome
        else:
            api, calls, outcome = unpack(item)
        if type(calls) is not int or calls < 0:
            calls = quantity(t, api, calls)
        pos = billable_pos(api)
        if pos is None:
            pos = free_pos(api)
            if pos is None:
                if unknown is None:
                    unknown = {}
                unknown[api] = unknown.get(api, 0) + calls
                continue
        elif outcome in billed_outcomes or (outcome is not None and outcome not in free_outcomes
                                            and billed_after(t, outcome)):
            was = billed[pos]
            billed[pos] = was + calls if was > 0 else calls
            continue
        if billed[pos] < 0:
            billed[pos] = 0"""


def compile_rating(t: Tariff, helpers: dict):
    """The tariff's rating of one account-month, as two generated functions, ``rate_keyed`` (usage
    as a dict API → calls, a copy the bill keeps) and ``rate_items`` (usage items), each
    ``(usage, account, period, packs, suspended, buyer)`` → Bill. Each counts the usage and, in the
    common case (every API known, no resource packs, a book of plain tiered prices with no
    adjustments or tax), prices and builds the bill in the same function, so that rating an account
    costs little more than its arithmetic; every other case goes on to ``helpers["finish"]``
    (`rating._finish`), which does the whole of it. `helpers` are rating's own functions and the
    names the source refers to."""
    env = {**_namespace(t), **helpers, "t": t, "NO_USAGE": t.no_usage, "billed_outcomes": t.billed_outcomes,
           "free_outcomes": t.free_outcomes, "new_bill": t.new_bill}
    simple = t.tax is None and t.adjust is None and not t.basis_pos
    grant = "True" if t.free_while_suspended else "not suspended"
    made = []
    for name, count, keyed, positions in (("rate_keyed", _COUNT_KEYED, True, ("keyed_billable_pos", "keyed_free_pos")),
                                           ("rate_items", _COUNT_ITEMS, False, ("billable_pos", "free_pos"))):
        env[f"{name}_billable_pos"], env[f"{name}_free_pos"] = (getattr(t, a).get for a in positions)
        body = [f"def {name}(usage, account, period, packs, suspended, buyer):",
                f"    billable_pos, free_pos = {name}_billable_pos, {name}_free_pos", count]
        finish = f"finish(t, billed, usage, {keyed}, unknown, account, period, packs, suspended, buyer)"
        if not simple:
            body += [f"    return {finish}"]
        else:
            body += ["    if unknown is not None or packs:", f"        return {finish}",
                     f"    grant_free, pack_queues = {grant}, None", "    try:", *_price_blocks(t, env, "        ", packs=False),
                     # Per-line: the sum of rounded charges is already on the quantum, so this only
                     # gives an empty bill the quantum's exponent too.
                     "        total = quantize(charged, Q)",
                     "    except DecimalException as exc:", "        raise too_large(exc) from None",
                     "    if rated:",
                     # Lines(build_lines, args), without the cost of a Python __init__ call on every bill.
                     "        lines = new_object(Lines)",
                     f"        lines._build, lines._args, lines._lines = build_lines, (t, usage, {keyed}, rated), None",
                     "    else:", "        lines = ()",
                     "    return new_bill(account, period, lines, subtotal, total, (), (), (), None)"]
        made.append(_define(t, body, env, name))
    return tuple(made)


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
