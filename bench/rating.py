"""Rating throughput: `ratecard.rate()` against a hand-written function for the same price book.

    python bench/rating.py [--accounts N] [--repeat N] [--seed N] [--profile]

Each account-month has calls in several categories of the shipped international price book (SPEC
§1-2): a few billable APIs per category with successful calls, some calls failing with the billed
no-face error and some with free error codes, and, for half the accounts, calls of free group APIs.
Counts are log-uniform from 1 to ~30 million, so all three tiers occur.

The baseline is what a competent engineer would write by hand for this one product: the price
book, the API lists and the billed outcomes hard-coded as dicts and sets, volume tiers, per-bill
half-up rounding to the cent. It returns the same information a bill's reader needs (per category:
billable calls, tier, unit price, amount; subtotal; total), and both are checked to agree on every
account before anything is timed. The engine returns a full `Bill` (per-API counts, free calls,
tier charges, rules fingerprint, ...), so it does strictly more work.

Both run in the same process on the same data; the figure is the best of N passes (least disturbed
by the machine), and the ratio engine / baseline is in account-months per second (> 1: engine
faster). Results are discarded as they are made, as a billing batch that writes each bill out
would. A third figure puts the ratio in context: the rate of merely building the records a Bill
holds (with the engine's own fast constructors, no counting, no arithmetic), which bounds what any
`rate()` returning a full Bill can reach. Not a test: timings never gate CI.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ratecard  # noqa: E402
from ratecard.rating import SUCCESS, UsageItem  # noqa: E402

PERIOD = "2020-09"
NO_FACE = "InvalidParameterValue.NoFaceInPhoto"
FREE_ERRORS = ("FailedOperation.ImageDecodeFailed", "InvalidParameterValue.ImageEmpty", "LimitExceeded")

# -- the hand-written baseline: SPEC §1-2 hard-coded ----------------------------------------------

_LOW = ((3_000_000, Decimal("0.0005")), (15_000_000, Decimal("0.0004")), (None, Decimal("0.0003")))
_HIGH = ((3_000_000, Decimal("0.0008")), (15_000_000, Decimal("0.0006")), (None, Decimal("0.0004")))
PRICE_BOOK = {  # in the order bills list them
    "face-detection": _LOW,
    "facial-feature-localization": _LOW,
    "face-comparison": _HIGH,
    "face-verification": _HIGH,
    "face-search": _HIGH,
    "group-management": _HIGH,
    "liveness-detection": _HIGH,
}
BILLABLE_APIS = {
    "face-detection": ("DetectFace", "DetectFaceAttributes"),
    "facial-feature-localization": ("AnalyzeFace", "AnalyzeDenseLandmarks"),
    "face-comparison": ("CompareFace", "CompareMaskFace"),
    "face-verification": ("VerifyFace", "VerifyPerson"),
    "face-search": ("SearchFaces", "SearchFacesReturnsByGroup", "SearchPersons", "SearchPersonsReturnsByGroup"),
    "group-management": ("CreatePerson", "CreateFace"),
    "liveness-detection": ("DetectLiveFace",),
}
FREE_APIS = {
    "group-management": (
        "CreateGroup", "DeleteGroup", "GetGroupInfo", "GetGroupList", "ModifyGroup", "DeletePerson",
        "DeletePersonFromGroup", "GetPersonGroupInfo", "GetPersonBaseInfo", "GetPersonList", "GetPersonListNum",
        "ModifyPersonGroupInfo", "ModifyPersonBaseInfo", "CopyPerson", "DeleteFace",
        "GetUpgradeGroupFaceModelVersionJobList", "GetUpgradeGroupFaceModelVersionResult",
        "RevertGroupFaceModelVersion", "UpgradeGroupFaceModelVersion",
    ),
}
_BILLABLE_CATEGORY = {api: cat for cat, apis in BILLABLE_APIS.items() for api in apis}
_FREE_CATEGORY = {api: cat for cat, apis in FREE_APIS.items() for api in apis}
_BILLED_OUTCOMES = frozenset({None, SUCCESS, NO_FACE})  # None: aggregated usage, billed
_CENT = Decimal("0.01")


def baseline(usage):
    """(lines, subtotal, total): a line (category, billable calls, tier, unit price, amount) for each
    category with any calls, in price book order. `usage` is UsageItems, or a dict API → calls."""
    billable = {}
    seen = set()
    if type(usage) is dict:
        for api, calls in usage.items():
            cat = _BILLABLE_CATEGORY.get(api)
            if cat is None:
                seen.add(_FREE_CATEGORY[api])
            else:
                billable[cat] = billable.get(cat, 0) + calls
    else:
        for u in usage:
            cat = _BILLABLE_CATEGORY.get(u.api)
            if cat is None:
                seen.add(_FREE_CATEGORY[u.api])
            elif u.outcome in _BILLED_OUTCOMES:
                billable[cat] = billable.get(cat, 0) + u.calls
            else:
                seen.add(cat)
    lines = []
    subtotal = Decimal(0)
    for cat, tiers in PRICE_BOOK.items():
        calls = billable.get(cat)
        if calls is None:
            if cat not in seen:
                continue
            calls = 0
        for tier, (bound, price) in enumerate(tiers, 1):
            if bound is None or calls <= bound:
                break
        amount = price * calls
        lines.append((cat, calls, tier, price, amount))
        subtotal += amount
    return lines, subtotal, subtotal.quantize(_CENT, rounding=ROUND_HALF_UP)


# -- the data --------------------------------------------------------------------------------------


def account_usage(rng: random.Random) -> list[UsageItem]:
    items = []
    for cat in rng.sample(sorted(BILLABLE_APIS), rng.randint(2, 5)):
        apis = BILLABLE_APIS[cat]
        for api in rng.sample(apis, rng.randint(1, len(apis))):
            calls = int(10 ** rng.uniform(0, 7.5))
            items.append(UsageItem(api, calls, SUCCESS))
            if rng.random() < 0.5:
                items.append(UsageItem(api, calls // rng.randint(10, 40), NO_FACE))
            if rng.random() < 0.3:
                items.append(UsageItem(api, calls // rng.randint(20, 100), rng.choice(FREE_ERRORS)))
    if rng.random() < 0.5:
        for api in rng.sample(FREE_APIS["group-management"], rng.randint(1, 4)):
            items.append(UsageItem(api, rng.randint(1, 20_000), SUCCESS))
    rng.shuffle(items)
    return items


def aggregated(items: list[UsageItem]) -> dict[str, int]:
    """The same account as aggregated counts with no outcome (all billed), as a dict."""
    out: dict[str, int] = {}
    for u in items:
        out[u.api] = out.get(u.api, 0) + u.calls
    return out


# -- checking and timing ------------------------------------------------------------------------


def check(rules, accounts) -> None:
    for i, usage in enumerate(accounts):
        bill = ratecard.rate(rules, usage, PERIOD)
        got = ([(line.category, line.calls, line.tier, line.unit_price, line.amount) for line in bill.lines],
               bill.subtotal, bill.total)
        want = baseline(usage)
        if got != want or str(got[2]) != str(want[2]):
            sys.exit(f"account {i}: engine and baseline disagree\n  engine:   {got}\n  baseline: {want}")


def _pass(fn, accounts) -> float:
    # CPU time of this thread, not wall time: on a shared machine a pass that is preempted by other
    # processes is not charged for the time it waited.
    start = time.thread_time()
    for usage in accounts:
        fn(usage)
    return time.thread_time() - start


def best_rates(fns, accounts, repeat: int) -> list[float]:
    """Account-months per second of each function, best of `repeat` passes. The passes of the
    functions alternate, so a change in the machine's load between them (other processes on a
    shared machine) disturbs all of them alike instead of skewing the ratio."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], _pass(fn, accounts))
    return [len(accounts) / b for b in best]


def with_lines(rules):
    """rate() and then read every line and its per-API breakdown, as rendering an invoice does:
    rate() works out every amount, but builds the line records only when they are first read."""

    def rate_and_read(usage):
        bill = ratecard.rate(rules, usage, PERIOD)
        for line in bill.lines:
            line.apis
        return bill

    return rate_and_read


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000, help="account-months (default 20000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed passes; the best counts (default 7)")
    parser.add_argument("--seed", type=int, default=2020, help="random seed of the usage (default 2020)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the engine's pass")
    args = parser.parse_args(argv)

    rules = ratecard.load_rules(ROOT / "rules" / "face-recognition")
    rng = random.Random(args.seed)
    with_outcomes = [account_usage(rng) for _ in range(args.accounts)]
    scenarios = {"usage items with outcomes": with_outcomes,
                 "aggregated counts (dict)": [aggregated(items) for items in with_outcomes]}

    def rate(usage):
        return ratecard.rate(rules, usage, PERIOD)

    items = sum(map(len, with_outcomes))
    lines = sum(len(ratecard.rate(rules, u, PERIOD).lines) for u in with_outcomes)
    print(f"{sys.implementation.name} {sys.version.split()[0]}, {args.accounts:,} account-months, seed {args.seed}: "
          f"{items / args.accounts:.1f} usage items and {lines / args.accounts:.1f} bill lines per account-month")
    for name, accounts in scenarios.items():
        check(rules, accounts)
        rate(accounts[0])  # compile the tariff outside the timing
        engine_speed, baseline_speed, full = best_rates([rate, baseline, with_lines(rules)], accounts, args.repeat)
        print(f"{name:28} engine {engine_speed:9,.0f}/s   baseline {baseline_speed:9,.0f}/s   "
              f"ratio engine/baseline {engine_speed / baseline_speed:.2f}")
        print(f"{'':28} (rate and read every line, as an invoice does: {full:9,.0f}/s, "
              f"{full / baseline_speed:.2f} × baseline)")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: [rate(u) for u in accounts])
            pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
