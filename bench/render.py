"""Rendering text invoices: ratecard's sandboxed, bounded Jinja environment against a plain one.

    python bench/render.py [--invoices 2000] [--big 300] [--repeat 5] [--seed 10] [--profile sandboxed|plain]

`settle` renders every account's text invoice (`render_invoice(bill, policy, "text", ...)`), and the
templates run in Jinja's sandbox with ratecard's bounds (engine/render.py, engine/templatelimits.py).
This measures what that costs next to the same templates in an unsandboxed environment
(`make_environment(sandboxed=False)`), both in one run, on two workloads:

1. settle-like: N accounts of the shipped international rule set (rules/face-recognition, 2020-09),
   three APIs each with 1..5,000,000 calls (as `bench/ingest.py --settle` writes them), rated and
   given the recorded invoice's number and dates, rendered with the rule set's seller.
2. a big bill: the China rule set (rules/face-recognition-cn, in Chinese) copied with a tax file and
   negotiated account terms added, every API of its mapping used, two resource packs, a buyer:
   several lines, packs, free quota, an adjustment and tax on one invoice.

Each figure is CPU milliseconds per invoice (`time.process_time`), the best of `--repeat` passes, the
environments taking turns pass by pass so that a change of load touches both; wall milliseconds are
shown too. The ratio is sandboxed / plain. Both environments must render byte-identical invoices,
or the run stops. The rendering only: rating and the invoice's dates are made before timing.

Not a test: timings never gate CI. The machine may be shared; the load average is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIOD = "2020-09"
ISSUED = date(2020, 10, 2)

# Added to a copy of the China rule set for the big bill: the shipped rule sets have no tax file and
# no negotiated terms, and an invoice with both shows every part of the text template.
TAX = """\
kind: tax
effective_from: 2020-01-01
prices: exclusive
rounding: { mode: half-up, apply: per-invoice }
rates:
  - { country: CN, rate: 6, label: "增值税 6%" }
"""
TERMS = """\
kind: account-terms
effective_from: 2020-01-01
accounts:
  big-customer:
    discounts:
      - { name: 年度框架协议折扣, percent: 8 }
    credits:
      - { name: 服务中断补偿, amount: 150 }
"""


def settle_like(count: int, seed: int) -> tuple[list, object]:
    """(bill, invoice meta) pairs of `count` accounts as `settle` renders them, and the render options."""
    import ratecard
    from ratecard.invoice import invoice_meta
    from ratecard.rating import rate, tariff

    rules = ratecard.load_rules(ROOT / "rules" / "face-recognition")
    _, mapping, _ = rules.in_force(PERIOD)
    apis = sorted(mapping.apis)
    policy = tariff(rules, PERIOD).policy
    seller = rules.seller_at(PERIOD)
    rng = random.Random(seed)
    work = []
    for n in range(count):
        usage = [(rng.choice(apis), rng.randint(1, 5_000_000), "success") for _ in range(3)]
        bill = rate(rules, usage, PERIOD, account=f"acct-{n:07d}")
        work.append((bill, invoice_meta(bill, policy, number=f"INV-202009-{n:07d}", issued=ISSUED)))
    party, paper = (seller.party, seller.paper) if seller else (None, "A4")
    return work, (policy, dict(seller=party, buyer=None, paper=paper))


def big_bill(count: int, folder: Path) -> tuple[list, object]:
    """`count` copies of one large China-site invoice (several lines, packs, an adjustment, tax)."""
    import ratecard
    from ratecard.invoice import invoice_meta
    from ratecard.model import Party
    from ratecard.rating import PackBalance, rate, tariff

    rules_dir = folder / "face-recognition-cn-taxed"
    shutil.copytree(ROOT / "rules" / "face-recognition-cn", rules_dir)
    (rules_dir / "tax.yaml").write_text(TAX, encoding="utf-8")
    (rules_dir / "account-terms.yaml").write_text(TERMS, encoding="utf-8")
    rules = ratecard.load_rules(rules_dir)
    _, mapping, _ = rules.in_force(PERIOD)
    policy = tariff(rules, PERIOD).policy
    usage = [(api, 40_000 + 7_919 * i, "success") for i, api in enumerate(sorted(mapping.apis))]
    packs = (PackBalance("fd-1m", "face-detection", 1_000_000, date(2021, 6, 30)),
             PackBalance("fs-100k", "face-search", 100_000, date(2021, 3, 31)))
    buyer = Party("某某科技有限公司", ("北京市海淀区中关村大街1号",), "CN", "91110108MA00000000")
    bill = rate(rules, usage, PERIOD, account="big-customer", packs=packs, buyer=buyer)
    if not (len(bill.lines) > 3 and bill.adjustments and bill.tax and any(x.packs_used for x in bill.lines)):
        sys.exit("the big bill lost its lines, packs, adjustments or tax: the rule set changed?")
    seller = rules.seller_at(PERIOD)
    party, paper = (seller.party, seller.paper) if seller else (None, "A4")
    work = [(bill, invoice_meta(bill, policy, number=f"CN-202009-{n:05d}", issued=ISSUED)) for n in range(count)]
    return work, (policy, dict(seller=party, buyer=buyer, paper=paper))


def environments(locale: str) -> dict:
    from ratecard.render import make_environment

    return {"sandboxed": make_environment(locale=locale), "plain": make_environment(sandboxed=False, locale=locale)}


def one_pass(env, work, options) -> tuple[float, float, str]:
    from ratecard.render import render_invoice

    policy, kwargs = options
    digest = hashlib.sha256()
    cpu, wall = time.process_time(), time.perf_counter()
    for bill, meta in work:
        digest.update(render_invoice(bill, policy, "text", env=env, meta=meta, **kwargs).encode())
    return time.process_time() - cpu, time.perf_counter() - wall, digest.hexdigest()


def measure(name: str, work, options, repeat: int) -> dict:
    envs = environments(options[0].locale)
    for env in envs.values():  # templates compiled, format caches warm: what a long settle run sees
        one_pass(env, work[:50], options)
    best: dict[str, tuple[float, float]] = {}
    digests: dict[str, str] = {}
    for _ in range(repeat):
        for label, env in envs.items():
            cpu, wall, digest = one_pass(env, work, options)
            old = best.get(label, (cpu, wall))
            best[label] = (min(old[0], cpu), min(old[1], wall))
            digests[label] = digest
    if len(set(digests.values())) != 1:
        sys.exit(f"{name}: the sandboxed and plain environments render different invoices: {digests}")
    n = len(work)
    s_cpu, s_wall = (t / n * 1000 for t in best["sandboxed"])
    p_cpu, p_wall = (t / n * 1000 for t in best["plain"])
    return {"name": name, "n": n, "s_cpu": s_cpu, "s_wall": s_wall, "p_cpu": p_cpu, "p_wall": p_wall,
            "ratio": s_cpu / p_cpu}


def profile(label: str, work, options) -> None:
    import cProfile
    import pstats

    env = environments(options[0].locale)[label]
    one_pass(env, work[:50], options)
    prof = cProfile.Profile()
    prof.enable()
    one_pass(env, work, options)
    prof.disable()
    print(f"\n-- profile: {len(work):,} settle-like text invoices, {label} --")
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=2000, help="settle-like invoices (default 2000)")
    parser.add_argument("--big", type=int, default=300, help="renderings of the big bill (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="passes per environment; the best counts (default 5)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--profile", choices=("sandboxed", "plain"),
                        help="also print a cProfile of one settle-like pass in that environment")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ratecard-bench-render-") as tmp:
        settle_work, settle_options = settle_like(args.invoices, args.seed)
        big_work, big_options = big_bill(args.big, Path(tmp))
        rows = [measure("settle-like (3 APIs, en)", settle_work, settle_options, args.repeat),
                measure("big bill (CN, packs, tax, adjustments)", big_work, big_options, args.repeat)]
        if args.profile:
            profile(args.profile, settle_work, settle_options)
    print(f"{'workload':<40} {'invoices':>8} {'sandboxed ms':>13} {'plain ms':>9} {'ratio':>6}   wall ms (s/p)")
    for r in rows:
        print(f"{r['name']:<40} {r['n']:>8,} {r['s_cpu']:>13.3f} {r['p_cpu']:>9.3f} {r['ratio']:>6.2f}"
              f"   {r['s_wall']:.3f}/{r['p_wall']:.3f}")
    print(f"CPU ms per invoice, best of {args.repeat}; ratio = sandboxed / plain. "
          f"Load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
