"""Semantic checks and model building for a category's price model (the loader's part for
`ratecard.price`): tiers with flat amounts, packages, percentages and decimal units.

Each function gets the loader's builder (to report located problems) and the document; it reads
only what the schema check let through, and reports what a schema cannot say (a tier with no
price, a package without sizes, a per-transaction maximum below the minimum, ...).
"""

from __future__ import annotations

from decimal import Decimal

from .model import Category, PackageTerms, PackOffer, PercentageTerms, Tier

# The keys of a tier that each model reads; any other priced key in a tier is a mistake.
_TIER_KEYS = {"tiered": {"unit_price", "flat_amount"}, "package": {"package_size", "package_price", "flat_amount"},
              "percentage": {"rate", "flat_amount"}}


def number(value):
    """A rule number (money, a rate, a quantum) as Decimal: a whole number written `2` loads as int,
    never to reach a float; anything else as it is (the schema check reports it, and the rule set is
    refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return value
    return Decimal(value)


def places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def count(b, doc, path, value, precision: int, what: str):
    """A quantity written in the rules (a bound, a block size, free units): int for whole units,
    else a Decimal with at most the unit's decimal places."""
    value = number(value)
    if not isinstance(value, Decimal):
        return None
    if places(value) > precision:
        b.problem(doc, path, f"{what} {value} has more decimal places than the category's unit allows "
                  f"({precision}); " + ("expected a whole number, or give the category a `unit` with "
                                        "`precision`" if not precision else f"expected at most {precision}"),
                  code="unit-precision")
    return int(value) if value == value.to_integral_value() and not precision else value


def unit_of(cat) -> tuple[str, int]:
    unit = cat.get("unit")
    if not isinstance(unit, dict):
        return "", 0
    precision = unit.get("precision", 0)
    return str(unit.get("name", "")), precision if isinstance(precision, int) and not isinstance(precision, bool) else 0


def tiers(b, doc, cid, raw, model: str, precision: int) -> tuple[Tier, ...]:
    """The tiers of any model, with the bound checks every model shares."""
    out = []
    previous: int | Decimal = 0  # a bound is a count, or an amount for a graduated percentage
    last = len(raw) - 1
    money_bounds = model == "percentage"  # a graduated percentage's bounds are transaction amounts
    for i, tier in enumerate(raw):
        path = ("categories", cid, "tiers", i)
        if not isinstance(tier, dict):
            continue
        bound = tier.get("up_to")
        bound = (number(bound) if money_bounds else count(b, doc, path + ("up_to",), bound, precision, "the bound")) \
            if bound is not None else None
        if not isinstance(bound, (int, Decimal)):
            bound = None
        if "up_to" not in tier and i != last:
            b.problem(doc, path, f"tier {i + 1} has no `up_to` but is not the last tier; only the last "
                      "tier may be unbounded: give this tier an upper bound", code="unbounded-middle-tier")
        if bound is not None and i == last:
            b.problem(doc, path + ("up_to",),
                      f"the last tier must be unbounded, or quantities above {bound:,} would have no price; "
                      "remove its `up_to` or add a last tier without one", key=True, code="bounded-last-tier")
        if bound is not None:
            if bound <= previous:
                b.problem(doc, path + ("up_to",),
                          f"tier bounds must be strictly ascending: {bound:,} is not above the previous "
                          f"bound {previous:,}; expected a bound greater than {previous:,}", code="tiers-not-ascending")
            previous = max(previous, bound)
        for key in ("unit_price", "flat_amount", "package_price", "rate"):
            value = number(tier.get(key))
            if isinstance(value, Decimal) and value.is_signed() and not value:  # the schema's minimum lets -0 through
                b.problem(doc, path + (key,), f"a price must not be negative, got {value}; write 0",
                          code="negative-price")
        wrong = sorted(k for k in tier if k != "up_to" and k not in _TIER_KEYS[model])
        for key in wrong:
            b.problem(doc, path + (key,), f"`{key}` is not part of a {model} tier; expected "
                      f"{' and/or '.join(f'`{k}`' for k in sorted(_TIER_KEYS[model]))}", key=True, code="tier-key")
        price = {"tiered": "unit_price", "package": "package_price", "percentage": "rate"}[model]
        if model == "tiered" and "unit_price" not in tier and "flat_amount" not in tier:
            b.problem(doc, path, f"tier {i + 1} has no price; expected a `unit_price`, a `flat_amount` or both",
                      key=True, code="tier-without-price")
        elif model != "tiered" and price not in tier:
            needs = "`package_size` and `package_price`" if model == "package" else "a `rate`"
            b.problem(doc, path, f"tier {i + 1} of a {model} category needs {needs}", key=True,
                      code="tier-without-price")
        size = count(b, doc, path + ("package_size",), tier.get("package_size"), precision, "the package size") \
            if model == "package" else None
        if model == "package" and size is None and "package_size" not in tier and price in tier:
            b.problem(doc, path, f"tier {i + 1} of a package category needs a `package_size`", key=True,
                      code="package-size")
        flat = number(tier.get("flat_amount"))
        out.append(Tier(bound, number(tier.get(price, 0)) if model != "percentage" else Decimal(0),
                        flat if isinstance(flat, Decimal) else None, size,
                        number(tier.get("rate")) if model == "percentage" else None))
    return tuple(out)


def package(b, doc, cid, cat, precision: int):
    """(PackageTerms, tiers) of a package category: one block size without tiers, or one per tier."""
    terms = cat.get("package")
    path = ("categories", cid)
    if not isinstance(terms, dict):
        b.problem(doc, path, "a package category needs `package` terms: `package: {size: N, price: P}` "
                  "(or `package: {}` with `package_size` and `package_price` in each tier)", key=True,
                  code="package-terms")
        return None, ()
    free = count(b, doc, path + ("package", "free_units"), terms.get("free_units", 0), precision, "the free units")
    built = PackageTerms(terms.get("rounding", "up"), free if free is not None else 0)
    if "tiers" in cat:
        for key in ("size", "price"):
            if key in terms:
                b.problem(doc, path + ("package", key), f"`package.{key}` and tiers were both given; with tiers, "
                          "give each tier its `package_size` and `package_price`", key=True, code="package-terms")
        return built, tiers(b, doc, cid, cat["tiers"], "package", precision)
    missing = [k for k in ("size", "price") if k not in terms]
    if missing:
        b.problem(doc, path + ("package",), f"a package without tiers needs `package.{'` and `package.'.join(missing)}`",
                  key=True, code="package-terms")
        return None, ()
    size = count(b, doc, path + ("package", "size"), terms["size"], precision, "the package size")
    return built, (Tier(None, number(terms["price"]), None, size),)


def percentage(b, doc, cid, cat):
    """(PercentageTerms, tiers) of a percentage category: a flat rate, or graduated tiers of rates."""
    terms = cat.get("percentage")
    path = ("categories", cid)
    if not isinstance(terms, dict):
        b.problem(doc, path, "a percentage category needs `percentage` terms: `percentage: {rate: R}` "
                  "(or `percentage: {}` with a `rate` in each tier)", key=True, code="percentage-terms")
        return None, ()
    rate = number(terms.get("rate"))
    low, high = number(terms.get("per_transaction_min")), number(terms.get("per_transaction_max"))
    built = PercentageTerms(rate if isinstance(rate, Decimal) else None, number(terms.get("fixed_fee", 0)),
                            low if isinstance(low, Decimal) else None, high if isinstance(high, Decimal) else None)
    if isinstance(low, Decimal) and isinstance(high, Decimal) and high < low:
        b.problem(doc, path + ("percentage", "per_transaction_max"), f"the per-transaction maximum {high} is below "
                  f"the minimum {low}; expected a maximum of at least {low}", code="max-below-min")
    if "tiers" in cat:
        if built.rate is not None or built.fixed_fee or low is not None or high is not None:
            b.problem(doc, path + ("percentage",), "a graduated percentage (tiers with rates) takes no `rate`, "
                      "`fixed_fee` or per-transaction bounds; give either a `rate` or tiers", key=True,
                      code="percentage-terms")
        return built, tiers(b, doc, cid, cat["tiers"], "percentage", 2)
    if built.rate is None:
        b.problem(doc, path + ("percentage",), "a percentage category needs a `rate` (percent of each "
                  "transaction's amount) or tiers with a `rate` each", key=True, code="percentage-terms")
        return None, ()
    return built, (Tier(None, Decimal(0), None, None, built.rate),)


def category(b, doc, cid, cat, book_mode: str, free: dict, packs_terms) -> Category:
    """One category of a price book, its price model's terms checked (`free`: the book's free quota;
    `packs_terms`: its resource pack terms, None when it sells none)."""
    model = cat.get("model", "tiered")
    unit, precision = unit_of(cat)
    mode = cat.get("tier_mode", book_mode)
    package_terms = percentage_terms = None
    if model == "package":
        package_terms, priced = package(b, doc, cid, cat, precision)
    elif model == "percentage":
        percentage_terms, priced = percentage(b, doc, cid, cat)
        mode = "graduated"  # a percentage's tiers split the transaction amount: graduated by nature
        if precision:
            b.problem(doc, ("categories", cid, "unit", "precision"), "a percentage category counts "
                         "transactions, which are whole: expected precision 0", code="percentage-terms")
        for key in ("packs", "free_quota"):
            if key in cat:
                b.problem(doc, ("categories", cid, key), f"a percentage category cannot have `{key}`: "
                             "it prices transaction amounts, not units", key=True, code="percentage-terms")
    else:
        for key in ("package", "percentage"):
            if key in cat:
                b.problem(doc, ("categories", cid, key), f"`{key}` terms belong to `model: {key}`; this "
                             f"category is {model}: set `model: {key}` or remove them", key=True,
                             code="model-terms")
        if "tiers" not in cat:
            b.problem(doc, ("categories", cid), "a tiered category needs `tiers`; a flat fee is a tier "
                         "too: write `tiers: [{flat_amount: 10}]`", key=True, code="no-tiers")
            priced = ()
        else:
            priced = tiers(b, doc, cid, cat["tiers"], "tiered", precision)
    if (model == "package" and package_terms is None) or (model == "percentage" and percentage_terms is None):
        raise ValueError("the model's terms are missing (reported)")
    packs = tuple(PackOffer(int(p["units"]), number(p["price"])) for p in cat.get("packs", ()))
    seen: dict[int, int] = {}
    for i, pack in enumerate(packs):
        if pack.units in seen:
            b.problem(doc, ("categories", cid, "packs", i, "units"),
                         f"a pack of {pack.units:,} units is listed twice (also item {seen[pack.units] + 1}); "
                         "expected each pack size once", code="duplicate-pack")
        seen[pack.units] = i
    if packs and packs_terms is None:
        b.problem(doc, ("categories", cid, "packs"),
                     "packs are on sale but the book has no `resource_packs` terms; "
                     "expected `resource_packs: {valid_for_months: N}` at the top level",
                     key=True, code="pack-terms")
    if not priced:
        raise ValueError("no tiers (reported)")
    low, high = number(cat.get("minimum_spend")), number(cat.get("maximum_spend"))
    return Category(
        id=cid, name=cat["name"], tier_mode=mode, tiers=priced,
        description=cat.get("description", ""),
        free_quota=0 if model == "percentage" else int(cat.get("free_quota", free.get("units", 0))),
        packs=packs, model=model, package=package_terms, percentage=percentage_terms, unit=unit, precision=precision,
        minimum_spend=low if isinstance(low, Decimal) else None,
        maximum_spend=high if isinstance(high, Decimal) else None,
    )
