"""The bill job end to end: invoices per second, peak memory, flat memory on call records, sandbox cost.

    python bench/bill.py [--accounts N] [--calls N] [--render N] [--seed N] [--no-set] [--profile] [--keep]

1. Aggregated usage for N accounts (default 100,000; fixed seed; 3 to 6 APIs each, outcomes mixed,
   counts log-uniform so every tier occurs) is written to a temporary CSV file, then billed by
   `python -m ratecard bill` to JSON Lines and to text invoices, with `--jobs 1` and with the default
   (every core, since the run is large). Each figure is the whole command as a user runs it: start,
   rules, reading, rating, rendering, writing; invoices per second = invoices / wall time. Output
   goes to a file whose SHA-256 is compared between the two job counts (must be byte-identical).
2. Peak memory of each run: ru_maxrss from wait4() (the largest single process: the main one, or a
   worker) and the process tree's memory sampled every 20 ms (main + workers; proportional set
   size, so pages a forked worker still shares with its parent count once).
3. Call records: one file of M records (default 200,000), one ten times larger, for the same 1,000
   accounts, APIs and outcomes (random UUID request ids, ~1% logged twice), each billed to JSON
   Lines with `--jobs 1`.
   The peak memory of the two must be within 10%: the request ids seen spill to a temporary SQLite
   file (engine/seen.py). For contrast (skip with --no-set) the same two files are read with the
   ids kept in a plain Python set, which grows with them.
4. The sandbox: R text invoices (default 5,000) rendered in this process with
   `make_environment(sandboxed=True)` and with `sandboxed=False` (and with Jinja's stock
   ImmutableSandboxedEnvironment, which ratecard's sandbox refines); best of 3; the outputs must
   be identical.

Not a test: timings never gate CI. On a machine shared with other work, the --jobs 2 figures in
particular move with the load; the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIOD = "2020-09"
APIS = ("DetectFace", "DetectFaceAttributes", "AnalyzeFace", "AnalyzeDenseLandmarks", "CompareFace",
        "CompareMaskFace", "VerifyFace", "VerifyPerson", "SearchFaces", "SearchPersons", "CreatePerson",
        "CreateFace", "CreateGroup", "GetGroupList", "DetectLiveFace")
OUTCOMES = ("success",) * 6 + ("", "InvalidParameterValue.NoFaceInPhoto", "FailedOperation.ImageDecodeFailed")
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# -- data ------------------------------------------------------------------------------------------


def write_aggregated(path: Path, accounts: int, seed: int) -> int:
    rng = random.Random(seed)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("account,period,api,calls,outcome\n")
        for i in range(accounts):
            account = f"acct-{i:07d}"
            for api in rng.sample(APIS, rng.randint(3, 6)):
                calls = int(10 ** rng.uniform(0, 7.5))
                out.write(f"{account},{PERIOD},{api},{calls},{rng.choice(OUTCOMES)}\n")
                rows += 1
    return rows


CALL_APIS = ("DetectFace", "AnalyzeFace", "CompareFace", "VerifyFace", "SearchFaces", "CreatePerson",
             "CreateGroup", "DetectLiveFace")
CALL_OUTCOMES = ("success", "InvalidParameterValue.NoFaceInPhoto", "FailedOperation.ImageDecodeFailed")


def write_calls(path: Path, records: int, seed: int, accounts: int = 1_000) -> None:
    """`records` call records of `accounts` accounts; about 1% repeat an earlier request id.

    Each account calls 4 APIs with 3 outcomes, and the first records go through every one of those
    (account, API, outcome) once: two files of different lengths then have the same accounts and
    the same totals to keep, and differ only in the request ids (given at least 12 records an
    account)."""
    rng = random.Random(seed)
    combos = [(f"acct-{a:04d}", CALL_APIS[(a + k) % len(CALL_APIS)], outcome)
              for a in range(accounts) for k in range(4) for outcome in CALL_OUTCOMES]
    recent: list[str] = []
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("request_id,account,api,timestamp,outcome\n")
        for i in range(records):
            if recent and rng.random() < 0.01:
                rid = rng.choice(recent)
            else:
                rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                if len(recent) < 1_000:
                    recent.append(rid)
                else:
                    recent[i % 1_000] = rid
            account, api, outcome = combos[i] if i < len(combos) else rng.choice(combos)
            # Within September in Beijing time, written in UTC.
            day, hour, minute = rng.randint(1, 29), rng.randint(0, 15), rng.randint(0, 59)
            out.write(f"{rid},{account},{api},2020-09-{day:02d}T{hour:02d}:{minute:02d}:00Z,{outcome}\n")


# -- measuring a command -----------------------------------------------------------------------------


def _tree_memory_kib(pid: int) -> int:
    """Memory of a process and its descendants, from /proc (0 where /proc is not there).

    PSS, where the kernel gives it: forked workers share their parent's pages until they write
    them, and summing their RSS would count those pages once per process."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            try:
                with open(f"/proc/{p}/smaps_rollup") as fh:
                    total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
            except (OSError, StopIteration):
                with open(f"/proc/{p}/status") as fh:
                    total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError, StopIteration):
            pass
    return total


def measure(args: list[str], stdout) -> dict:
    """Run a command; its wall time, its peak RSS (largest process, MiB) and its tree's sampled peak (MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    peak_tree = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak_tree[0] = max(peak_tree[0], _tree_memory_kib(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's of the bench
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{err.decode(errors='replace')}")
    # ru_maxrss is KiB on Linux, bytes on macOS.
    maxrss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    # CPU time of the command and of the workers it waited for (forked workers are its children).
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "rss": maxrss, "tree": peak_tree[0] / 1024, "stderr": err.decode()}


def bill_command(usage: Path, fmt: str, jobs: int | None) -> list[str]:
    return [sys.executable, "-m", "ratecard", "bill", "--usage", str(usage), "--format", fmt, "--quiet",
            *(["--jobs", str(jobs)] if jobs else [])]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def tail(path: Path, size: int = 1_000) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - size))
        return fh.read().decode("utf-8", errors="replace")


_SET_READER = """
import resource, sys
from ratecard.rules import load_rules
from ratecard.usage import UsageReader
reader = UsageReader(load_rules(sys.argv[2]))  # the default: every request id in a Python set
reader.read(sys.argv[1])
print(len(reader.seen_ids), file=sys.stderr)
"""


# -- the sandbox -------------------------------------------------------------------------------------


def sandbox_cost(usage: Path, count: int) -> dict:
    from itertools import islice

    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from ratecard import render as render_module
    from ratecard.rating import rate, tariff
    from ratecard.rules import load_rules
    from ratecard.usage import UsageReader

    rules = load_rules(ROOT / "rules" / "face-recognition")
    accounts = islice(UsageReader(rules).read(usage).accounts(), count)
    policy = tariff(rules, PERIOD).policy
    bills = [rate(rules, u.items, u.period, account=u.account) for u in accounts]

    def stock_environment():
        # Jinja's own immutable sandbox, as make_environment() configured it before its verdict cache.
        env = render_module.make_environment(sandboxed=False)
        stock = ImmutableSandboxedEnvironment(loader=env.loader, autoescape=env.autoescape,
                                              undefined=env.undefined, trim_blocks=True, lstrip_blocks=True,
                                              keep_trailing_newline=True)
        stock.filters.update(env.filters)
        return stock

    environments = {"sandboxed": render_module.make_environment(sandboxed=True),
                    "unsandboxed": render_module.make_environment(sandboxed=False),
                    "stock sandbox": stock_environment()}
    best, outputs = {}, {}
    for _ in range(3):
        for name, env in environments.items():
            start = time.perf_counter()
            texts = [render_module.render_invoice(b, policy, "text", env) for b in bills]
            elapsed = time.perf_counter() - start
            best[name] = min(best.get(name, elapsed), elapsed)
            outputs[name] = hashlib.sha256("".join(texts).encode()).hexdigest()
    if len(set(outputs.values())) != 1:
        sys.exit(f"the environments render different invoices: {outputs}")
    return {"count": len(bills), **{name: len(bills) / t for name, t in best.items()}}


def profile(usage: Path, count: int) -> None:
    import cProfile
    import pstats
    from itertools import islice

    from ratecard.billrun import bill_accounts
    from ratecard.rules import load_rules
    from ratecard.usage import UsageReader

    rules = load_rules(ROOT / "rules" / "face-recognition")
    accounts = list(islice(UsageReader(rules).read(usage).accounts(), count))
    for fmt in ("jsonl", "text"):
        prof = cProfile.Profile()
        prof.enable()
        for _ in bill_accounts(rules, accounts, fmt, jobs=1):
            pass
        prof.disable()
        print(f"\n-- profile: rate + render {len(accounts):,} accounts to {fmt} --")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


# -- the run -----------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts of aggregated usage (default 100000)")
    parser.add_argument("--calls", type=int, default=200_000,
                        help="call records in the smaller call-record file; the other has ten times as many "
                             "(default 200000)")
    parser.add_argument("--render", type=int, default=5_000, help="invoices rendered for the sandbox cost (default 5000)")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--no-set", action="store_true", help="skip the contrast run with a plain set of request ids")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of rating and rendering")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder of data and output")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ratecard-bench-"))
    try:
        return run(args, work)
    finally:
        if args.keep:
            print(f"\ndata and output kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> int:
    cores = os.cpu_count() or 1
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"ratecard bill bench: {args.accounts:,} accounts, {cores} core(s), Python {sys.version.split()[0]}{load}")

    usage = work / "usage.csv"
    t = time.perf_counter()
    rows = write_aggregated(usage, args.accounts, args.seed)
    print(f"generated {rows:,} rows of aggregated usage in {time.perf_counter() - t:.1f} s "
          f"({usage.stat().st_size / 1e6:.0f} MB)")

    results = []
    for fmt in ("jsonl", "text"):
        digests = {}
        for jobs in (1, None):
            out = work / f"out-{fmt}-{jobs or 'default'}"
            with open(out, "wb") as fh:
                m = measure(bill_command(usage, fmt, jobs), fh)
            digests[jobs] = sha256(out)
            invoices = args.accounts
            summary = m["stderr"] if fmt == "jsonl" else tail(out)
            if f"billed {invoices:,} invoice(s)" not in summary:
                sys.exit(f"unexpected summary: {summary}")
            out.unlink()
            label = "1" if jobs else f"default ({cores if args.accounts >= 2000 else 1})"
            results.append((fmt, label, invoices / m["wall"], m["wall"], m["cpu"], m["rss"], m["tree"]))
            print(f"  {fmt:<5} jobs {label:<12} {invoices / m['wall']:>9,.0f} invoices/s  {m['wall']:6.1f} s "
                  f"({m['cpu']:5.1f} s CPU)  "
                  f"peak {m['rss']:6.1f} MiB largest process, {m['tree']:6.1f} MiB all processes (PSS)")
        if digests[1] != digests[None]:
            sys.exit(f"{fmt}: --jobs 1 and the default differ")

    small, large = work / "calls-1x.csv", work / "calls-10x.csv"
    t = time.perf_counter()
    write_calls(small, args.calls, args.seed)
    write_calls(large, args.calls * 10, args.seed)
    print(f"generated {args.calls:,} and {args.calls * 10:,} call records in {time.perf_counter() - t:.1f} s")
    flat = {}
    for name, path in (("1x", small), ("10x", large)):
        m = measure(bill_command(path, "jsonl", 1), subprocess.DEVNULL)
        flat[name] = m
        print(f"  calls {name:<4} {path.stat().st_size / 1e6:6.0f} MB  {m['wall']:6.1f} s  peak {m['rss']:6.1f} MiB")
    contrast = {}
    if not args.no_set:
        for name, path in (("1x", small), ("10x", large)):
            m = measure([sys.executable, "-c", _SET_READER, str(path), str(ROOT / "rules" / "face-recognition")],
                        subprocess.DEVNULL)
            contrast[name] = m
            print(f"  calls {name:<4} read with a plain set of ids: {m['wall']:6.1f} s  peak {m['rss']:6.1f} MiB")

    sandbox = sandbox_cost(usage, args.render)

    growth = flat["10x"]["rss"] / flat["1x"]["rss"] - 1
    print("\n| run | invoices/s | wall (s) | CPU (s) | peak RSS, largest process (MiB) "
          "| peak memory, all processes (PSS, MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for fmt, label, rate, wall, cpu, rss, tree in results:
        print(f"| {args.accounts:,} accounts → {fmt}, jobs {label} | {rate:,.0f} | {wall:.1f} | {cpu:.1f} | {rss:.1f} "
              f"| {tree:.1f} |")
    print("\n| call records | records | wall (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for name, records in (("1x", args.calls), ("10x", args.calls * 10)):
        m = flat[name]
        print(f"| `ratecard bill`, {name} | {records:,} | {m['wall']:.1f} | {m['rss']:.1f} |")
    for name, records in (("1x", args.calls), ("10x", args.calls * 10)):
        if name in contrast:
            m = contrast[name]
            print(f"| reader with a plain set, {name} | {records:,} | {m['wall']:.1f} | {m['rss']:.1f} |")
    verdict = "flat (within 10%)" if abs(growth) <= 0.10 else "NOT flat"
    print(f"\ncall records ×10: peak memory {growth:+.1%}: {verdict}")
    print(f"\n| text invoices rendered in process ({sandbox['count']:,}) | invoices/s |")
    print("|---|---:|")
    for name in ("unsandboxed", "sandboxed", "stock sandbox"):
        print(f"| {name} | {sandbox[name]:,.0f} |")
    print(f"\nsandbox cost: sandboxed takes {sandbox['unsandboxed'] / sandbox['sandboxed']:.2f}× the time of "
          f"unsandboxed (Jinja's stock sandbox: {sandbox['unsandboxed'] / sandbox['stock sandbox']:.2f}×)")
    if hasattr(os, "getloadavg"):
        print(f"load average at the end: {os.getloadavg()[0]:.2f} on {cores} core(s)")

    if args.profile:
        profile(usage, min(args.accounts, 5_000))
    return 0 if abs(growth) <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
