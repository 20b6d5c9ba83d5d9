"""Crash safety and concurrency of settlement: real processes, SIGKILL, and two runs at once.

A settle run here first collects the previous period's scheduled debits, then settles a period whose
debits are taken at once; so a crash can land between any two of: collecting a debit, rating an
account, writing its bill, taking its debit (inside the transaction), and committing. After any crash
the ledger must be consistent, and a re-run must finish exactly what was missing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ratecard.cli import main
from ratecard.ledger import Ledger

from conftest import ROOT, write_rule_set

BERLIN = ZoneInfo("Europe/Berlin")
ACCOUNTS = ("a0", "a1", "a2", "a3")
GADGETS = {"a0": 1, "a1": 2, "a2": 4, "a3": 20}  # toy gadgets: ≤10 at 1.50, above at 1.25
MONTHLY = {"a0": D("1.50"), "a1": D("3.00"), "a2": D("6.00"), "a3": D("25.00")}
TOP_UP = D("30")
# After January and February: 30 - 2 × the monthly total; a3 goes 30 → 5 → -20 and is suspended.
FINAL = {"a0": D("27.00"), "a1": D("24.00"), "a2": D("18.00"), "a3": D("-20.00")}
STEPS = len(ACCOUNTS) * 5  # one "collected" per account, then rated, billed, debited, committed per account

# Runs `ratecard` with the ledger's fault-injection seam set: kill:N sends SIGKILL to itself at the
# N-th checkpoint; pause:S sleeps S seconds at every checkpoint (to widen the windows between them).
DRIVER = """\
import os, signal, sys, time
import ratecard.ledger as ledger
from ratecard.cli import main

mode, _, value = os.environ.get("LEDGER_FAULT", "").partition(":")
steps = 0

def hook(name):
    global steps
    steps += 1
    if mode == "kill" and steps == int(value):
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "pause":
        time.sleep(float(value))

ledger._checkpoint_hook = hook
sys.exit(main(sys.argv[1:]))
"""


def at(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A template ledger: four accounts with January settled (debits scheduled), and February's usage."""
    root = tmp_path_factory.mktemp("crash")
    rules_dir = write_rule_set(root / "toy")
    import ratecard
    from ratecard.usage import UsageReader

    rules = ratecard.load_rules(rules_dir)
    usage = {}
    for period in ("2024-01", "2024-02"):
        path = root / f"usage-{period}.csv"
        path.write_text("account,period,api,calls\n" + "".join(f"{a},{period},LookupGadget,{GADGETS[a]}\n"
                                                                for a in ACCOUNTS), encoding="utf-8")
        usage[period] = path
    template = root / "template.db"
    with Ledger(template, create=True) as ledger:
        for a in ACCOUNTS:
            ledger.create_account(a, a.upper(), "EUR", at(2024, 1, 1))
            ledger.activate(a, "toy", "v1", at(2024, 1, 1))
            ledger.top_up(a, TOP_UP, at(2024, 1, 1))
        reader = UsageReader(rules, period="2024-01").read(usage["2024-01"])
        report = ledger.settle(rules, reader.accounts(), "2024-01", at(2024, 2, 2, 10))
        assert {s.debit for s in report.accounts} == {"scheduled"}
    assert not Path(str(template) + "-wal").exists()
    driver = root / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    return {"root": root, "rules": rules_dir, "usage": usage["2024-02"], "template": template, "driver": driver}


def settle_args(setup, db: Path, batch: int | None = None) -> list[str]:
    # February's window is March 5-9; its settlement collects January's debits (due since Feb 5) first.
    return ["settle", "--period", "2024-02", "--usage", str(setup["usage"]), "--rules", str(setup["rules"]),
            "--at", at(2024, 3, 6, 10).isoformat(), "--db", str(db), "--format", "json",
            *(["--batch", str(batch)] if batch else [])]


def start(setup, db: Path, fault: str, batch: int | None = None) -> subprocess.Popen:
    env = dict(os.environ, LEDGER_FAULT=fault, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(setup["driver"]), *settle_args(setup, db, batch)], cwd=setup["root"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def fresh_db(setup, name: str) -> Path:
    db = setup["root"] / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copy(setup["template"], db)
    return db


def check_consistent(db: Path) -> dict:
    """Whatever point a run stopped at: the books add up and nothing is there twice."""
    with Ledger(db, readonly=True) as ledger:
        assert ledger.verify() == []
        entries = ledger.entries()
        for kind in ("bill-issued", "debit"):
            keys = [(e.account, e.period) for e in entries if e.kind == kind]
            assert len(keys) == len(set(keys)), kind
        return {"bills": len(ledger.bills()), "debits": sum(e.kind == "debit" for e in entries)}


def check_complete(db: Path) -> None:
    with Ledger(db, readonly=True) as ledger:
        assert ledger.verify() == []
        entries = ledger.entries()
        for period in ("2024-01", "2024-02"):
            for kind in ("bill-issued", "debit"):
                assert sorted(e.account for e in entries if e.kind == kind and e.period == period) == list(ACCOUNTS)
        for a in ACCOUNTS:
            account = ledger.account(a)
            assert account.balance == FINAL[a]
            debits = [e.amount for e in entries if e.account == a and e.kind == "debit"]
            assert debits == [-MONTHLY[a], -MONTHLY[a]]
            assert sum(e.amount for e in entries if e.account == a) == account.balance
        assert [a for a in ACCOUNTS if not ledger.status(a, "toy").allowed] == ["a3"]
        assert sum(e.kind == "suspended" for e in entries) == 1
        # Invoice numbers are gap-free, in the order issued, whatever run issued them.
        assert [d.number for d in ledger.documents()] == [f"INV-{n:06d}" for n in range(1, 9)]


def rerun(setup, db: Path, capsys) -> dict:
    capsys.readouterr()
    code = main(settle_args(setup, db))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


# What a run killed anywhere can have recorded, by accounts per transaction: January's four debits
# are collected one by one, then February's accounts are billed and debited a batch at a time.
BATCHED = {1: {(4, 1), (4, 2), (4, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8)},
           3: {(4, 1), (4, 2), (4, 3), (4, 4), (7, 7), (8, 8)},
           None: {(4, 1), (4, 2), (4, 3), (4, 4), (8, 8)}}  # the default batch holds all four


@pytest.mark.parametrize("accounts_per_batch", [1, 3, None])
def test_a_run_killed_at_every_checkpoint_is_completed_exactly_by_a_re_run(setup, capsys, accounts_per_batch):
    # STEPS + 1 never fires: that run completes, and its re-run must change nothing.
    kills = list(range(1, STEPS + 2))
    partial = set()
    for batch in (kills[i:i + 4] for i in range(0, len(kills), 4)):
        runs = [(k, fresh_db(setup, f"kill-{accounts_per_batch}-{k}")) for k in batch]
        procs = [(k, db, start(setup, db, f"kill:{k}", accounts_per_batch)) for k, db in runs]
        for k, db, proc in procs:
            out, err = proc.communicate(timeout=60)
            if k <= STEPS:
                assert proc.returncode == -signal.SIGKILL, (k, err)
            else:
                assert proc.returncode == 0, err
            state = check_consistent(db)
            partial.add((state["bills"], state["debits"]))
            rerun(setup, db, capsys)
            check_complete(db)
    # The crashes did land at every point between nothing done and everything done, and never inside
    # a batch: an account is recorded only with the rest of its batch.
    assert partial == BATCHED[accounts_per_batch]


def test_a_run_killed_after_random_delays_is_completed_by_a_re_run(setup, capsys):
    # A whole run takes about half a second here (start-up, then 20 checkpoints of 10 ms).
    killed = set()
    for seed in range(12):
        rng = random.Random(seed)
        db = fresh_db(setup, f"random-{seed}")
        proc = start(setup, db, "pause:0.01")
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        state = check_consistent(db)
        if proc.returncode == -signal.SIGKILL:
            killed.add((state["bills"], state["debits"]))
        report = rerun(setup, db, capsys)
        check_complete(db)
        # Whatever the first run did, the two runs together settled each account once.
        assert all(a["outcome"] in ("settled", "already-settled") for a in report["accounts"])
    assert killed, "no run was interrupted: the delays are too long for this machine"


def test_two_runs_at_once_bill_and_debit_each_account_once(setup):
    for round_ in range(3):
        db = fresh_db(setup, f"race-{round_}")
        procs = [start(setup, db, "pause:0.005") for _ in range(2)]
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            reports.append(json.loads(out))
        check_complete(db)
        settled = sorted(a["account"] for r in reports for a in r["accounts"] if a["outcome"] == "settled")
        assert settled == list(ACCOUNTS)  # each account settled by exactly one of the runs
        collected = sorted(c["account"] for r in reports for c in r["collected"] if c["applied"])
        assert collected == list(ACCOUNTS)  # and January's debit collected by exactly one


# -- corrections: supplementary invoices and credit notes, killed at every checkpoint ----------------
#
# February settled (the complete ledger above), then February's usage corrected: a0 made 3 gadget
# lookups more (1 → 4: 1.50 → 6.00, a supplementary invoice of 4.50), a2 made 2 fewer (4 → 2: 6.00 →
# 3.00, a credit note of 3.00); a1 and a3 are unchanged.
CORRECTED = {"a0": 4, "a1": 2, "a2": 2, "a3": 20}
CORRECTED_FINAL = {"a0": D("22.50"), "a1": D("24.00"), "a2": D("21.00"), "a3": D("-20.00")}


@pytest.fixture(scope="module")
def settled(setup, tmp_path_factory):
    root = tmp_path_factory.mktemp("corrections")
    template = root / "february.db"
    shutil.copy(setup["template"], template)
    main(settle_args(setup, template))
    check_complete(template)
    usage = root / "corrected.csv"
    usage.write_text("account,period,api,calls\n" + "".join(f"{a},2024-02,LookupGadget,{CORRECTED[a]}\n"
                                                            for a in ACCOUNTS), encoding="utf-8")
    return {**setup, "template": template, "usage": usage, "root": root}


def check_corrected(db: Path) -> None:
    with Ledger(db, readonly=True) as ledger:
        assert ledger.verify() == []
        later = [(d.number, d.kind, d.account, d.refers_to, d.amount) for d in ledger.documents()][8:]
        assert later == [("INV-000009", "supplementary-invoice", "a0", "INV-000005", D("4.50")),
                         ("CN-000001", "credit-note", "a2", "INV-000007", D("3.00"))]
        assert {a: ledger.account(a).balance for a in ACCOUNTS} == CORRECTED_FINAL


@pytest.mark.parametrize("accounts_per_batch, states", [(1, {8, 9, 10}), (None, {8, 10})])
def test_corrections_killed_at_every_checkpoint_are_issued_exactly_once(settled, capsys, accounts_per_batch, states):
    # Per account: corrected (a0 and a2 only) inside the transaction, then committed.
    steps = len(ACCOUNTS) + 2
    partial = set()
    for batch in (list(range(1, steps + 2))[i:i + 4] for i in range(0, steps + 1, 4)):
        runs = [(k, fresh_db(settled, f"correct-{accounts_per_batch}-{k}")) for k in batch]
        procs = [(k, db, start(settled, db, f"kill:{k}", accounts_per_batch)) for k, db in runs]
        for k, db, proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == (-signal.SIGKILL if k <= steps else 0), (k, err)
            with Ledger(db, readonly=True) as ledger:
                assert ledger.verify() == []  # gap-free series, balances equal to their entries
                partial.add(len(ledger.documents()))
            report = rerun(settled, db, capsys)
            assert {a["outcome"] for a in report["accounts"]} <= {"corrected", "already-settled"}
            check_corrected(db)
            again = rerun(settled, db, capsys)  # the same corrected usage once more: nothing
            assert {a["outcome"] for a in again["accounts"]} == {"already-settled"}
            check_corrected(db)
    # Killed before either, between them (one transaction each), after both; never between them in one.
    assert partial == states


def test_two_correcting_runs_at_once_issue_each_document_once(settled):
    for round_ in range(2):
        db = fresh_db(settled, f"correct-race-{round_}")
        procs = [start(settled, db, "pause:0.005") for _ in range(2)]
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            reports.append(json.loads(out))
        check_corrected(db)
        corrected = sorted(a["account"] for r in reports for a in r["accounts"] if a["outcome"] == "corrected")
        assert corrected == ["a0", "a2"]


def test_void_and_credit_note_killed_inside_their_transaction_change_nothing(settled, capsys, tmp_path):
    db = fresh_db(settled, "void")
    # January is settled and paid; February's invoices were debited at once, so none is unpaid: make
    # one, settling March before its window (its debit is then scheduled).
    march = tmp_path / "march.csv"
    march.write_text("account,period,api,calls\na0,2024-03,LookupGadget,2\n", encoding="utf-8")
    args = ["settle", "--period", "2024-03", "--usage", str(march), "--rules", str(settled["rules"]), "--at",
            at(2024, 4, 2, 10).isoformat(), "--db", str(db)]
    assert main(args) == 0
    with Ledger(db, readonly=True) as ledger:
        (invoice,) = [d.number for d in ledger.documents() if d.account == "a0" and d.period == "2024-03"]
    commands = [
        ["void", invoice, "--rules", str(settled["rules"]), "--at", at(2024, 4, 3, 10).isoformat()],
        ["credit-note", "a1", "INV-000006", "--amount", "1.00", "--reason", "goodwill", "--rules",
         str(settled["rules"]), "--at", at(2024, 4, 3, 11).isoformat()],
    ]
    for command in commands:
        before = check_consistent(db)
        env = dict(os.environ, LEDGER_FAULT="kill:1", PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, str(settled["driver"]), *command, "--db", str(db)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert check_consistent(db) == before
        with Ledger(db, readonly=True) as ledger:
            count = len(ledger.documents())
        for _ in range(2):  # the re-run issues it; running it again changes nothing
            capsys.readouterr()
            assert main([*command, "--db", str(db)]) == 0
        with Ledger(db, readonly=True) as ledger:
            assert len(ledger.documents()) == count + 1 and ledger.verify() == []
    with Ledger(db, readonly=True) as ledger:
        assert [d.number for d in ledger.documents()][-2:] == ["CN-000001", "CN-000002"]
        main(["collect", "--at", at(2024, 4, 10, 10).isoformat(), "--db", str(db)])
    with Ledger(db, readonly=True) as ledger:
        # The voided invoice's debit was never taken; a1 got its 1.00 back.
        assert [e for e in ledger.entries("a0") if e.kind == "debit" and e.period == "2024-03"] == []
        assert ledger.account("a1").balance == D("25.00")


def test_two_processes_creating_a_new_ledger_at_once(tmp_path):
    for round_ in range(3):
        db = tmp_path / f"new-{round_}.db"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        procs = [subprocess.Popen([sys.executable, "-m", "ratecard", "account", "create", name, "--currency", "EUR",
                                   "--db", str(db), "--at", "2024-01-01T00:00:00Z"], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in ("x", "y")]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        with Ledger(db, readonly=True) as ledger:
            assert [a.id for a in ledger.accounts()] == ["x", "y"]
            assert ledger.verify() == []


def test_a_run_killed_while_a_failed_batch_is_recorded_again_is_completed_by_a_re_run(setup, capsys):
    # A batch is first written without a savepoint an account; when one fails (here a2's debit, refused by
    # a trigger) the batch is rolled back and the accounts before it are written again with savepoints.
    # Found by review: no crash test reached that second writing. Killed at each of its checkpoints, then
    # the cause removed, a re-run must complete the ledger exactly.
    import sqlite3

    def trigger(db: Path, on: bool) -> None:
        with sqlite3.connect(db) as con:
            con.execute("CREATE TRIGGER refuse_a2 BEFORE INSERT ON debits WHEN NEW.account = 'a2' AND "
                        "NEW.period = '2024-02' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" if on
                        else "DROP TRIGGER refuse_a2")
        con.close()

    killed_at = []
    for k in range(1, STEPS + 2):
        db = fresh_db(setup, f"redo-kill-{k}")
        trigger(db, True)
        proc = start(setup, db, f"kill:{k}", 3)
        _, err = proc.communicate(timeout=60)
        trigger(db, False)
        state = check_consistent(db)
        if proc.returncode == -signal.SIGKILL:
            killed_at.append(k)
        else:  # the failing run ran to its end: a0 and a1 recorded (their batch written again), a2 not
            assert proc.returncode == 1 and "refused by the test" in err, err
            assert (state["bills"], state["debits"]) == (6, 6)
        rerun(setup, db, capsys)
        check_complete(db)
        if proc.returncode != -signal.SIGKILL:
            break
    # Killed at every checkpoint up to the end: collecting January's four debits, the first try of the
    # batch (a0 and a1 billed and debited, a2 rated and billed), then the batch written again.
    assert killed_at == list(range(1, len(killed_at) + 1)) and len(killed_at) > 10, killed_at
