"""Semantic checks and model building for `tax` rule files (the loader's part for `ratecard.tax`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from .model import books_while_in_force
from .tax import Exemption, NoTax, ReverseCharge, TaxRate, TaxRules


def _decimal(value):
    return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value


def tax_rules(b, doc, start: date) -> TaxRules:
    data = doc.data
    rates: list[TaxRate] = []
    seen: dict[tuple, int] = {}
    for i, raw in enumerate(data.get("rates") or ()):
        if not isinstance(raw, dict):
            continue
        rate = TaxRate(str(raw["country"]), raw.get("region"), _decimal(raw["rate"]), str(raw["label"]))
        where = (rate.country, rate.region)
        if where in seen:
            named = rate.country + (f"-{rate.region}" if rate.region else "")
            b.problem(doc, ("rates", i), f"buyers in {named} have two rates (also item {seen[where] + 1}); "
                      "expected one rate per country or region", key=True, code="duplicate-rate")
            continue
        seen[where] = i
        rates.append(rate)
    exemptions = []
    for i, raw in enumerate(data.get("exemptions") or ()):
        if not isinstance(raw, dict):
            continue
        categories, countries = raw.get("categories"), raw.get("countries")
        if categories is None and countries is None:
            b.problem(doc, ("exemptions", i), "an exemption needs `categories`, `countries` or both; one with "
                      "neither would exempt every bill", key=True, code="exemption")
            continue
        exemptions.append(Exemption(frozenset(categories) if categories is not None else None,
                                    frozenset(countries) if countries is not None else None,
                                    str(raw["label"]), str(raw["wording"])))
    rc = data.get("reverse_charge")
    reverse = ReverseCharge(frozenset(rc["countries"]), str(rc["label"]), str(rc["wording"])) \
        if isinstance(rc, dict) else None
    other = data.get("other_countries")
    return TaxRules(start, str(data["prices"]), str(data["rounding"]["mode"]), str(data["rounding"]["apply"]),
                    tuple(rates), tuple(exemptions), reverse,
                    NoTax(str(other["label"]), str(other["wording"])) if isinstance(other, dict) else None,
                    doc.file)


def check_categories(b, pricing, versions) -> None:
    """Every category an exemption names is in each price book in force while the tax rules are."""
    for _, doc, start, book in books_while_in_force(pricing, versions):
        for j, raw in enumerate(doc.data.get("exemptions") or ()):
            named = raw.get("categories") if isinstance(raw, dict) else None
            for k, cid in enumerate(named if isinstance(named, list) else ()):
                if isinstance(cid, str) and cid not in book.categories:
                    b.problem(doc, ("exemptions", j, "categories", k),
                              f"category {cid!r} is not in the price book in force from {start.isoformat()} "
                              f"({book.source}); expected one of: {', '.join(book.categories)}",
                              code="unknown-category")
