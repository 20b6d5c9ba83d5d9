"""Load test of the gateway path: `GET /v1/accounts/{account}/status` of `ratecard serve`, on loopback.

    python bench/serve.py [--accounts N] [--levels 1,4,16,64] [--seconds S] [--max-requests N] [--workers 1,2]

A ledger of N accounts (half of them suspended) is made in a temporary folder; `ratecard serve` is
started as a process on a free 127.0.0.1 port (once per --workers value); a load process sends
status requests for random accounts over keep-alive HTTP/1.1 connections at each concurrency level
(so many connections, each one request at a time), for --seconds or --max-requests, whichever
comes first, and reports requests per second and p50/p99 latency as seen by the client. Then
the same with the status cache disabled (--status-ttl 0: every answer one SQLite query).

The baseline, measured in the same run: the in-process Python call a library user makes
(`LedgerAccess.status`, the server's own cached lookup, and `Ledger.status`, one query), so the
ratio says what HTTP costs. The load generator runs on the same 2 cores as the server, and the
machine is shared: the load average before and after is printed with the figures. Everything is
bounded in count and time and stops by itself; only 127.0.0.1 is ever contacted. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-read-token-0123456789"
HOST = "127.0.0.1"  # loopback only, always
CST = timezone(timedelta(hours=8))


def make_ledger(folder: Path, accounts: int) -> tuple[Path, list[str]]:
    import ratecard
    from ratecard.ledger import Ledger
    from ratecard.usage import UsageReader

    rules = ratecard.load_rules(ROOT / "rules" / "face-recognition")
    db = folder / "bench.db"
    names = [f"acct-{i:05d}" for i in range(accounts)]
    usage = folder / "usage.csv"
    usage.write_text("account,period,api,calls,outcome\n" + "".join(
        f"{n},2020-09,SearchFaces,{3_000_000 if i % 2 else 1000},success\n" for i, n in enumerate(names)), "utf-8")
    start = datetime(2020, 9, 1, tzinfo=CST)
    with Ledger(db, create=True) as ledger:
        for n in names:
            ledger.create_account(n, n, "USD", start)
            ledger.activate(n, rules.name, "2020-09", start)
            ledger.top_up(n, "100", start + timedelta(days=1))
        ledger.settle(rules, UsageReader(rules, period="2020-09").read(usage).accounts(), "2020-09",
                      datetime(2020, 10, 2, 9, tzinfo=CST))
    return db, names


def percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6  # ms, for display only


# -- the load process -------------------------------------------------------------------------------


async def _connection(port: int, names: list[str], deadline: float, budget: list[int], out: list[int], seed: int):
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            request = (f"GET /v1/accounts/{rng.choice(names)}/status HTTP/1.1\r\nHost: {HOST}\r\n"
                       f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
            t0 = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            out.append(time.perf_counter_ns() - t0)
            if not head.startswith(b"HTTP/1.1 200") or b'"allowed"' not in body:
                raise RuntimeError(f"unexpected answer: {head[:40]!r}")
    finally:
        writer.close()


def _load(port: int, names: list[str], connections: int, seconds: float, max_requests: int, queue) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def run():
        out: list[int] = []
        budget = [max_requests]
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(_connection(port, names, deadline, budget, out, i) for i in range(connections)))
        return out, time.perf_counter() - t0

    out, elapsed = asyncio.run(run())
    queue.put((sorted(out), elapsed))


def load(port, names, connections, seconds, max_requests):
    queue = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=_load, args=(port, names, connections, seconds,
                                                                           max_requests, queue))
    proc.start()
    latencies, elapsed = queue.get(timeout=seconds + 60)
    proc.join(timeout=30)
    return len(latencies) / elapsed, percentile(latencies, 0.50), percentile(latencies, 0.99), len(latencies)


# -- the server ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db: Path, workers: int, status_ttl: str = "1"):
        self.port = free_port()
        env = dict(os.environ, RATECARD_TOKENS=f"read:{TOKEN}")
        self.proc = subprocess.Popen([sys.executable, "-m", "ratecard", "serve", "--host", HOST, "--port",
                                      str(self.port), "--db", str(db), "--workers", str(workers), "--status-ttl",
                                      status_ttl, "--rules", str(ROOT / "rules" / "face-recognition")],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the in-process baseline -----------------------------------------------------------------------


def in_process(db: Path, names: list[str], seconds: float, max_calls: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from ratecard.http.state import LedgerAccess
    from ratecard.ledger import Ledger

    rng = random.Random(7)
    out = {}
    access = LedgerAccess(db)
    with Ledger(db, readonly=True) as ledger:
        for label, call in (("LedgerAccess.status (the server's cached lookup)",
                             lambda n: access.status(n, "face-recognition")),
                            ("Ledger.status + to_dict + json (one query)",
                             lambda n: json.dumps(ledger.status(n, "face-recognition").to_dict()))):
            for n in names:  # warm: every account cached once
                call(n)
            times = []
            deadline = time.perf_counter() + seconds
            t_start = time.perf_counter()
            while len(times) < max_calls and time.perf_counter() < deadline:
                n = rng.choice(names)
                t0 = time.perf_counter_ns()
                call(n)
                times.append(time.perf_counter_ns() - t0)
            elapsed = time.perf_counter() - t_start
            times.sort()
            out[label] = (len(times) / elapsed, percentile(times, 0.5), percentile(times, 0.99), len(times))
    access.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--levels", default="1,4,16,64", help="concurrent connections, comma-separated")
    p.add_argument("--seconds", type=float, default=4.0, help="at most this long per level (default 4)")
    p.add_argument("--max-requests", type=int, default=30_000, help="at most this many requests per level")
    p.add_argument("--workers", default="1,2", help="server processes to try, comma-separated")
    args = p.parse_args()
    if not 1 <= args.accounts <= 100_000 or not 0 < args.seconds <= 30 or not 1 <= args.max_requests <= 500_000:
        raise SystemExit("keep it bounded: --accounts 1-100000, --seconds up to 30, --max-requests up to 500000")
    levels = [int(x) for x in args.levels.split(",")]
    if any(not 1 <= c <= 256 for c in levels):
        raise SystemExit("--levels: 1 to 256 connections each")

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} core(s)")
    with tempfile.TemporaryDirectory(prefix="ratecard-bench-") as tmp:
        db, names = make_ledger(Path(tmp), args.accounts)
        print(f"ledger: {len(names):,} accounts, half suspended; requests for random accounts\n")
        base = in_process(db, names, args.seconds, args.max_requests)
        print(f"{'in-process baseline':<52} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'calls':>7}")
        for label, (rate, p50, p99, n) in base.items():
            print(f"{label:<52} {rate:>9,.0f} {p50:>8.3f} {p99:>8.3f} {n:>7,}")
        reference = next(iter(base.values()))[0]
        runs = [(int(w), "1", f"{w} worker(s), cached") for w in args.workers.split(",")]
        runs.append((int(args.workers.split(",")[-1]), "0", f"{args.workers.split(',')[-1]} worker(s), no cache"))
        for workers, ttl, label in runs:
            server = Server(db, workers, ttl)
            try:
                print(f"\nHTTP, {label} (ratio: HTTP req/s ÷ in-process cached calls/s)")
                print(f"{'connections':>11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'ratio':>7}")
                for c in levels:
                    rate, p50, p99, n = load(server.port, names, c, args.seconds, args.max_requests)
                    print(f"{c:>11} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f} {n:>9,} {rate / reference:>7.3f}")
            finally:
                server.stop()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("goal: >= 2,000 status requests/s with p99 < 10 ms on 2 cores")


if __name__ == "__main__":
    main()
