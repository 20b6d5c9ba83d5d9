"""How long `ratecard account import` takes for many accounts, next to `account create` of one.

Run by hand from anywhere: `python bench/account_import.py [ACCOUNTS] [RUNS]` (default 10,000
accounts, 3 runs). Both run as fresh processes in the same run, each into a new ledger file, so the
ratio holds on any machine even when the absolute figures do not: the import of N accounts should
cost a small multiple of one `account create`, never N of them. Not a test: timings never gate CI.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(argv: list[str], runs: int, folder: Path) -> float:
    """Median wall time of `runs` runs into a fresh ledger each, after one untimed warm-up."""
    times = []
    for i in range(runs + 1):
        db = folder / f"ledger-{len(list(folder.iterdir()))}.db"
        start = time.perf_counter()
        done = subprocess.run([*argv, "--db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        accounts = folder / "accounts.csv"
        accounts.write_text("account,name,currency,country\n"
                            + "".join(f"acct-{i:06d},Customer {i},EUR,DE\n" for i in range(count)))
        ledgers = folder / "ledgers"
        ledgers.mkdir()
        cli = [sys.executable, "-m", "ratecard"]
        imported = wall([*cli, "account", "import", str(accounts)], runs, ledgers)
        one = wall([*cli, "account", "create", "acct-000000", "--currency", "EUR"], runs, ledgers)
    print(f"median of {runs} runs, {sys.executable}")
    print(f"account import ({count:,} accounts): {imported * 1000:8.1f} ms")
    print(f"account create (1 account):        {one * 1000:8.1f} ms")
    print(f"ratio import / one create:          {imported / one:8.2f}  (a create per account: ~{count:,})")


if __name__ == "__main__":
    main()
