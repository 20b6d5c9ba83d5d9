"""Semantic checks and model building for adjustments (the loader's part for `ratecard.adjust`):
discounts, minimum commitments, credits and spend limits, in a price book (list terms) or an
`account-terms` file (negotiated terms)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from .model import AccountTerms, Commitment, Credit, Discount, Terms, Window, frozen_mapping, books_while_in_force
from .periods import next_month, parse_period
from .rules_models import number


def _period_after(period: str, count: int) -> str:
    start = parse_period(period)
    for _ in range(count):
        start = next_month(start)
    return f"{start:%Y-%m}"


def window(b, doc, path, item) -> Window:
    first, last, periods = item.get("from"), item.get("until"), item.get("periods")
    first = first if isinstance(first, str) else None
    if isinstance(last, str) and isinstance(periods, int):
        b.problem(doc, path + ("periods",), "give `until` or `periods`, not both", key=True, code="window")
    if isinstance(periods, int) and not isinstance(periods, bool) and periods >= 1:
        if first is None:
            b.problem(doc, path + ("periods",), "`periods` counts from `from`: give the first period "
                      "(`from: YYYY-MM`)", key=True, code="window")
            return Window(None, None)
        try:
            last = _period_after(first, periods - 1)
        except Exception:  # a bad `from`: the schema has reported it
            return Window(first, None)
    last = last if isinstance(last, str) else None
    if first is not None and last is not None and last < first:
        b.problem(doc, path + ("until",), f"the window ends ({last}) before it starts ({first}); expected "
                  f"`until` on or after {first}", code="window")
    return Window(first, last)


def _money(value):
    value = number(value)
    return value if isinstance(value, Decimal) else None


def discounts(b, doc, path, raw, categories) -> tuple[Discount, ...]:
    out: list[tuple[int, Discount]] = []  # (item number, discount)
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(item, dict):
            continue
        where = path + (i,)
        percent, amount = _money(item.get("percent")), _money(item.get("amount"))
        if (percent is None) == (amount is None):
            b.problem(doc, where, "a discount needs exactly one of `percent` and `amount`", key=True, code="discount")
            continue
        if percent is not None and percent > 100:
            b.problem(doc, where + ("percent",), f"a discount of {percent}% is more than the whole amount; "
                      "expected a percent above 0 and at most 100", code="discount-over-100")
        category = item.get("category")
        if isinstance(category, str) and categories is not None and category not in categories:
            b.problem(doc, where + ("category",), f"category {category!r} is not in the price book; expected "
                      f"one of: {', '.join(categories)}", code="unknown-category")
        found = Discount(str(item.get("name", "")), percent, amount, category if isinstance(category, str) else None,
                         window(b, doc, where, item))
        for j, other in out:
            if other.category == found.category and other.window.overlaps(found.window):
                target = f"category {found.category}" if found.category else "the whole bill"
                b.problem(doc, where, f"discount {found.name!r} on {target} applies in some of the same periods "
                          f"as discount {other.name!r} (item {j + 1}); expected one discount per target and "
                          "period: give them windows that do not overlap (`from`, `until`)", key=True,
                          code="overlapping-discounts")
                break
        out.append((i, found))
    return tuple(d for _, d in out)


def credits(b, doc, path, raw) -> tuple[Credit, ...]:
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        if isinstance(item, dict) and _money(item.get("amount")) is not None:
            out.append(Credit(str(item.get("name", "")), _money(item["amount"]), item.get("below_zero") is True,
                              window(b, doc, path + (i,), item)))
    return tuple(out)


def commitments(b, doc, path, raw) -> tuple[Commitment, ...]:
    if not isinstance(raw, dict):
        return ()
    amount, name = _money(raw.get("amount")), raw.get("name")
    if amount is None:
        return ()
    return (Commitment(amount, name if isinstance(name, str) else "Minimum commitment", window(b, doc, path, raw)),)


def _spend(raw) -> dict:
    return {k: number(v) for k, v in raw.items() if isinstance(number(v), Decimal)} if isinstance(raw, dict) else {}


def terms(b, doc, data, path, categories) -> Terms:
    """The terms written in `data` (a price book, or one account of an account-terms file)."""
    return Terms(discounts(b, doc, path + ("discounts",), data.get("discounts"), categories),
                 commitments(b, doc, path + ("minimum_commitment",), data.get("minimum_commitment")),
                 credits(b, doc, path + ("credits",), data.get("credits")),
                 _spend(data.get("minimum_spend")), _spend(data.get("maximum_spend")))


def account_terms(b, doc, start: date) -> AccountTerms:
    raw = doc.data.get("accounts")
    accounts = {}
    for account, data in (raw.items() if isinstance(raw, dict) else ()):
        if isinstance(data, dict):
            # Categories are checked against the price books in force (check_categories).
            accounts[str(account)] = terms(b, doc, data, ("accounts", account), None)
    return AccountTerms(start, frozen_mapping(accounts), doc.file)


def check_categories(b, pricing, versions):
    """Every category an account's terms name is in each price book in force while the terms are."""
    for _, doc, start, book in books_while_in_force(pricing, versions):
        for account, data in doc.data.get("accounts", {}).items():
            if not isinstance(data, dict):
                continue
            named: list[tuple[tuple[str | int, ...], object]] = [
                (("accounts", account, "discounts", j, "category"), d.get("category"))
                for j, d in enumerate(data.get("discounts", ()) or ()) if isinstance(d, dict)]
            for key in ("minimum_spend", "maximum_spend"):
                if isinstance(data.get(key), dict):
                    named += [(("accounts", account, key, cid), cid) for cid in data[key]]
            for where, cid in named:
                if isinstance(cid, str) and cid not in book.categories:
                    b.problem(doc, where, f"category {cid!r} is not in the price book in force from "
                              f"{start.isoformat()} ({book.source}); expected one of: "
                              f"{', '.join(book.categories)}", key=where[-1] != "category",
                              code="unknown-category")
