"""Settlement in batches of accounts, with invoices rendered ahead by worker processes (issue 10):
the same ledger, byte for byte, whatever the batch size and the number of workers; a text rendered
with a number or buyer that is not the one the transaction finds is never recorded."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import ratecard
import ratecard.render as render_module
from ratecard.ledger import Ledger
from ratecard.rating import UsageItem
from ratecard.usage import AccountUsage

from conftest import write_rule_set

BERLIN = ZoneInfo("Europe/Berlin")
ACCOUNTS = [f"acct-{n:02d}" for n in range(12)]


def at(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("batches")
    rules = ratecard.load_rules(write_rule_set(root / "toy"))
    db = root / "template.db"
    with Ledger(db, create=True) as ledger:
        for n, account in enumerate(ACCOUNTS):
            buyer = {"legal_name": f"Buyer {n} GmbH", "country": "DE"} if n % 3 else {}
            ledger.create_account(account, account.upper(), "EUR", at(2024, 1, 1), **buyer)
            ledger.activate(account, "toy", "v1", at(2024, 1, 1))
            ledger.top_up(account, "5" if n == 4 else "100", at(2024, 1, 1))  # acct-04 ends in arrears
    usage = [AccountUsage(a, "2024-01", (UsageItem("RenderWidget", 30 * n + 1), UsageItem("LookupGadget", n)))
             for n, a in enumerate(ACCOUNTS) if n != 7]  # acct-07 made no calls: billed nothing
    return root, rules, db, usage


def copy(template: Path, to: Path) -> Path:
    shutil.copy(template, to)
    return to


def dump(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {table: con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
                for table in ("bills", "documents", "entries", "debits", "accounts", "services")}
    finally:
        con.close()


@pytest.fixture
def renders_here(monkeypatch):
    """Counts the invoices rendered in this process (the workers, forked, count their own)."""
    count = []
    real = render_module.render_invoice

    def counting(*args, **kwargs):
        count.append(args[0].account)
        return real(*args, **kwargs)

    monkeypatch.setattr(render_module, "render_invoice", counting)
    return count


def test_batches_and_workers_record_the_same_ledger_as_one_account_at_a_time(template, tmp_path, renders_here):
    root, rules, db, usage = template
    one = copy(db, tmp_path / "one.db")
    with Ledger(one) as ledger:
        ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=1, jobs=1)
    assert len(renders_here) == len(ACCOUNTS)
    expected = dump(one)
    assert [r[3] for r in expected["bills"]] == [f"INV-{n:06d}" for n in range(1, 13)]
    for batch, jobs in ((5, 1), (5, 2), (100, 2), (1, 2), (3, 2)):  # with workers, rated several batches ahead
        renders_here.clear()
        other = copy(db, tmp_path / f"b{batch}-j{jobs}.db")
        with Ledger(other) as ledger:
            report = ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=batch, jobs=jobs)
            assert ledger.verify() == []
        assert [a.outcome for a in report.accounts] == ["settled"] * len(ACCOUNTS)
        assert dump(other) == expected, (batch, jobs)
        # With workers every text came from them: none was rendered by the transaction.
        assert len(renders_here) == (len(ACCOUNTS) if jobs == 1 else 0), (batch, jobs)


def test_with_workers_accounts_are_rated_several_batches_ahead(template, tmp_path, monkeypatch):
    """The workers get the invoices of the batches after the one being written (up to four tasks a
    worker), not of the next batch alone: without workers an account is rated just before its batch."""
    import ratecard.ledger as ledger_module

    root, rules, db, usage = template
    orders = {}
    for jobs in (1, 2):
        steps = []
        monkeypatch.setattr(ledger_module, "_checkpoint_hook", lambda step: steps.append(step))
        with Ledger(copy(db, tmp_path / f"ahead-{jobs}.db")) as ledger:
            ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=2, jobs=jobs)
        orders[jobs] = [s for s in steps if s in ("rated", "committed")]
    assert orders[1] == ["rated", "rated", "committed", "committed"] * 6
    assert orders[2] == ["rated"] * 12 + ["committed"] * 12  # 12 accounts: all within the first batch's look-ahead


def test_a_buyer_changed_after_rendering_ahead_is_rendered_again(template, tmp_path, renders_here, meanwhile):
    root, rules, db, usage = template
    target = copy(db, tmp_path / "changed.db")

    def rename_a_later_buyer():
        with Ledger(target) as other:
            other.update_account("acct-09", legal_name="Renamed AG")

    meanwhile(10, rename_a_later_buyer)  # acct-09 was rated and handed to a worker; another process renames it
    with Ledger(target) as ledger:
        ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=4, jobs=2)
        assert ledger.verify() == []
    assert renders_here == ["acct-09"]  # rendered ahead with the old name, so rendered again
    con = sqlite3.connect(target)
    (text,) = con.execute("SELECT document_text FROM documents WHERE account = 'acct-09' AND kind = 'invoice'"
                          ).fetchone()
    con.close()
    assert "Renamed AG" in text and "Buyer 9 GmbH" not in text


def test_numbers_taken_meanwhile_are_not_printed_on_a_text_rendered_ahead(template, tmp_path, renders_here,
                                                                           meanwhile):
    root, rules, db, usage = template
    target = copy(db, tmp_path / "numbers.db")

    def another_run_settles_one_account():
        with Ledger(target) as other:
            other.settle(rules, [u for u in usage if u.account == "acct-11"], "2024-01",
                         at(2024, 2, 6, 10), hold=[a for a in ACCOUNTS if a != "acct-11"], jobs=1)

    # acct-11 is settled by another run (it takes INV-000001) as this one rates
    meanwhile(1, another_run_settles_one_account)
    with Ledger(target) as ledger:
        report = ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=100, jobs=2)
        assert ledger.verify() == []
    assert [a.outcome for a in report.accounts] == ["settled"] * 11 + ["already-settled"]
    # The other run's invoice was rendered in place; this run's were rendered ahead with numbers one
    # too low, so every one of them was rendered again with the number it got.
    assert sorted(renders_here) == sorted(ACCOUNTS)
    con = sqlite3.connect(target)
    rows = con.execute("SELECT b.account, b.invoice_number, d.document_text FROM bills AS b JOIN documents AS d "
                       "ON d.number = b.invoice_number ORDER BY b.invoice_number").fetchall()
    con.close()
    assert [(a, n) for a, n, _ in rows] == [("acct-11", "INV-000001")] + [
        (a, f"INV-{n:06d}") for n, a in enumerate(ACCOUNTS[:11], 2)]
    for account, number, text in rows:
        assert number in text, account


def test_an_account_that_fails_in_its_batch_leaves_the_others_as_one_at_a_time_would(template, tmp_path):
    """The batch's transaction reads its accounts' positions at once: an account whose position cannot
    take the bill (an entry dated after the settlement) fails alone, as it does settled one at a time."""
    root, rules, db, usage = template
    broken = copy(db, tmp_path / "broken.db")
    with Ledger(broken) as ledger:
        ledger.top_up("acct-05", "1", at(2024, 2, 7))  # after the settlement's moment
    dumps = {}
    for batch, jobs in ((1, 1), (5, 1), (5, 2), (100, 2)):
        target = copy(broken, tmp_path / f"b{batch}-j{jobs}.db")
        with Ledger(target) as ledger:
            report = ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=batch, jobs=jobs)
            assert ledger.verify() == []
        outcomes = {a.account: a.outcome for a in report.accounts}
        assert outcomes.pop("acct-05") == "failed"
        assert set(outcomes.values()) == {"settled"}
        (failed,) = report.failed
        assert "acct-05 already has an entry at 2024-02-06T23:00:00+00:00" in failed.problem, failed.problem
        dumps[batch, jobs] = dump(target)
    expected = dumps.pop((1, 1))
    assert [r[3] for r in expected["bills"]] == [f"INV-{n:06d}" for n in range(1, 12)]  # gap-free: 11 bills
    assert "acct-05" not in {r[0] for r in expected["bills"]}
    for key, other in dumps.items():
        assert other == expected, key


def test_a_pack_bought_between_rating_and_writing_a_later_batch_is_taken(tmp_path, meanwhile, renders_here):
    """A batch is rated (and, with workers, the next one too) before its transaction reads the packs
    again: a pack bought in between is found there, the bill priced again with it and its invoice
    rendered in place (the text rendered ahead priced it without)."""
    from test_packs import PACK_PRICING

    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", pricing=PACK_PRICING))
    accounts = [f"p{n}" for n in range(8)]
    usage = [AccountUsage(a, "2024-01", (UsageItem("RenderWidget", 80),)) for a in accounts]
    template = tmp_path / "template.db"
    with Ledger(template, create=True) as ledger:
        for account in accounts:
            ledger.create_account(account, account.upper(), "EUR", at(2024, 1, 1))
            ledger.activate(account, "toy", "v1", at(2024, 1, 1))
            ledger.top_up(account, "100", at(2024, 1, 1))
    for jobs in (1, 2):
        renders_here.clear()
        target = copy(template, tmp_path / f"j{jobs}.db")

        def buy_for_p4():
            with Ledger(target) as other:
                other.buy_pack(rules, "p4", "widgets", "100", at(2024, 1, 25))

        meanwhile(6, buy_for_p4)  # p4 and p5 (the second batch) are rated: another process buys for p4
        with Ledger(target) as ledger:
            report = ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=3, jobs=jobs)
            assert ledger.verify() == []
            totals = {a.account: a.total for a in report.accounts}
            # 80 requests less 5 free at 0.10: 7.50; p4's 75 are covered by its pack.
            assert totals.pop("p4") == 0 and set(totals.values()) == {7.5}, (jobs, report.accounts)
            text, bill = ledger.invoice("p4", "toy", "2024-01")
        assert bill["lines"][0]["packs_used"] == [{"pack_id": "PK-000001", "units_used": 75, "units_left": 25}]
        assert "Covered by pack PK-000001" in text
        if jobs == 2:
            assert renders_here == ["p4"]  # the others' texts, rendered ahead, were recorded


def test_savepoints_keep_what_they_undo_in_memory_while_settling_and_only_then(template, tmp_path, monkeypatch):
    """Each account's savepoint keeps the pages it changes as they were (SQLite's sub-journal): in a
    temporary file that is a write system call a page, so a settlement keeps them in memory, and puts
    SQLite's setting back once it is done (a failed run too), for other reads' large sorts."""
    import ratecard.ledger as ledger_module

    root, rules, db, usage = template
    with Ledger(copy(db, tmp_path / "memory.db")) as ledger:
        connection = ledger._store._db
        seen = []
        monkeypatch.setattr(ledger_module, "_checkpoint_hook", lambda step: seen.append(
            connection.execute("PRAGMA temp_store").fetchone()[0]) if step == "billed" else None)
        assert connection.execute("PRAGMA temp_store").fetchone()[0] == 0
        ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=5, jobs=1)
        assert seen == [2] * len(ACCOUNTS)  # MEMORY
        assert connection.execute("PRAGMA temp_store").fetchone()[0] == 0

        def fails(step):
            if step == "billed":
                raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(ledger_module, "_checkpoint_hook", fails)
        with pytest.raises(ratecard.ledger.LedgerError):
            ledger.settle(rules, [], "2024-02", at(2024, 3, 6, 10), batch=5, jobs=1)
        assert connection.execute("PRAGMA temp_store").fetchone()[0] == 0


@pytest.mark.parametrize("fails_at", ["billed", "debited"])
def test_an_account_whose_write_fails_leaves_those_before_it_in_its_batch_whole_and_once(template, tmp_path,
                                                                                         monkeypatch, fails_at):
    """A batch is first written without a savepoint an account: when an account's write fails part-way,
    the whole batch is undone and the accounts before it are written again. What is recorded is what one
    account at a time records: those before it whole and once, its own changes none, its number given back."""
    import ratecard.ledger as ledger_module
    from ratecard.ledger import SettleInterrupted

    root, rules, db, usage = template
    dumps = {}
    for batch, jobs in ((1, 1), (5, 1), (5, 2), (100, 1)):
        target = copy(db, tmp_path / f"fails-{batch}-{jobs}.db")
        steps = []

        def fail_the_eighth(step):  # acct-07: in the second batch of five, the eighth of one batch
            if step == fails_at:
                steps.append(step)
                if len(steps) == 8:
                    raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(ledger_module, "_checkpoint_hook", fail_the_eighth)
        with Ledger(target) as ledger:
            with pytest.raises(SettleInterrupted) as stopped:
                ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=batch, jobs=jobs)
        monkeypatch.setattr(ledger_module, "_checkpoint_hook", None)
        assert "stopped at account acct-07" in str(stopped.value) and "database or disk is full" in str(stopped.value)
        assert list(stopped.value.recorded) == ACCOUNTS[:7], (batch, jobs)
        with Ledger(target, readonly=True) as ledger:
            assert ledger.verify() == []
        dumps[batch, jobs] = dump(target)
    expected = dumps.pop((1, 1))
    assert [r[3] for r in expected["bills"]] == [f"INV-{n:06d}" for n in range(1, 8)]
    assert [r[0] for r in expected["debits"]] == ACCOUNTS[:7]
    for key, other in dumps.items():
        assert other == expected, key
    # Settling again records the rest, numbered on from where the series stopped.
    with Ledger(copy(tmp_path / "fails-5-1.db", tmp_path / "again.db")) as ledger:
        report = ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 11), batch=5, jobs=1)
        assert [a.outcome for a in report.accounts] == ["already-settled"] * 7 + ["settled"] * 5
        assert [d.number for d in ledger.documents()] == [f"INV-{n:06d}" for n in range(1, 13)]
        assert ledger.verify() == []


def test_a_correction_in_a_batch_is_numbered_between_its_new_invoices_without_a_gap(template, tmp_path):
    """The series' next number is read once a batch; a correction (a supplementary invoice, numbered in
    the invoices' series) issued in the same batch after a new invoice takes the next one, and the
    invoices after it go on from there."""
    root, rules, db, usage = template
    more = [AccountUsage(u.account, u.period, (*u.items, UsageItem("RenderWidget", 5))) if u.account == "acct-02"
            else u for u in usage]
    dumps = {}
    for batch in (1, 5, 100):
        target = copy(db, tmp_path / f"corrected-{batch}.db")
        with Ledger(target) as ledger:
            ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), hold=[ACCOUNTS[0], *ACCOUNTS[3:]],
                          batch=batch, jobs=1)
            report = ledger.settle(rules, more, "2024-01", at(2024, 2, 6, 11), batch=batch, jobs=1)
            assert [a.outcome for a in report.accounts] == (["settled", "already-settled", "corrected"]
                                                            + ["settled"] * 9), batch
            numbers = [(d.number, d.kind, d.account) for d in ledger.documents()]
            assert ledger.verify() == []
        assert numbers == ([("INV-000001", "invoice", "acct-01"), ("INV-000002", "invoice", "acct-02"),
                            ("INV-000003", "invoice", "acct-00"), ("INV-000004", "supplementary-invoice", "acct-02")]
                           + [(f"INV-{n + 5:06d}", "invoice", a) for n, a in enumerate(ACCOUNTS[3:])]), batch
        dumps[batch] = dump(target)
    assert dumps[5] == dumps[1] and dumps[100] == dumps[1]


def test_a_write_whose_failure_the_account_catches_is_undone_with_its_account_alone(tmp_path, monkeypatch):
    # Found by review: a batch written without savepoints kept what a write had changed when the account's
    # own code caught the failure and went on (a correction that cannot be taxed is reported as failed):
    # here the supplementary invoice's entry stayed, with no document, and `verify()` saw nothing wrong.
    from ratecard.tax import TaxError

    berlin = ZoneInfo("Europe/Berlin")
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy"))
    jan = datetime(2024, 1, 1, tzinfo=berlin)
    accounts = [f"a{n}" for n in range(5)]

    def usage(calls):
        return [AccountUsage(a, "2024-01", (UsageItem("RenderWidget", calls),)) for a in accounts]

    real = render_module.render_document

    def render_document(view, *args, **kwargs):
        if view.account == "a2":
            raise TaxError("cannot be taxed (as the test says)")
        return real(view, *args, **kwargs)

    dumps = []
    for batch in (5, 1):  # one batch without savepoints, then one account a transaction
        db = tmp_path / f"l{batch}.db"
        with Ledger(db, create=True) as ledger:
            for a in accounts:
                ledger.create_account(a, a.upper(), "EUR", jan)
                ledger.activate(a, "toy", "v1", jan)
                ledger.top_up(a, "100", jan)
            ledger.settle(rules, usage(10), "2024-01", datetime(2024, 2, 6, 10, tzinfo=berlin), batch=batch, jobs=1)
            monkeypatch.setattr(render_module, "render_document", render_document)
            report = ledger.settle(rules, usage(20), "2024-01", datetime(2024, 2, 6, 11, tzinfo=berlin),
                                   batch=batch, jobs=1)
            monkeypatch.setattr(render_module, "render_document", real)
            assert [s.outcome for s in report.accounts if s.account == "a2"] == ["failed"]
            assert ledger.verify() == []
        with sqlite3.connect(db) as con:
            a2 = con.execute("SELECT kind, amount FROM entries WHERE account = 'a2' ORDER BY seq").fetchall()
            assert "supplementary-invoice" not in {kind for kind, _ in a2}
            dumps.append([con.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                          for t in ("accounts", "entries", "documents", "bills", "debits")])
    assert dumps[0] == dumps[1]


def test_the_collector_runs_less_often_while_settling_and_as_before_after(template, tmp_path, monkeypatch):
    """A settlement raises the cyclic collector's youngest threshold while it writes (most of what an
    account allocates is freed by reference counting) and puts the caller's thresholds back after,
    even when it stops part-way; a threshold set higher, or a collector disabled, is left alone."""
    import gc

    import ratecard.ledger as ledger_module
    from ratecard.ledger import flow

    root, rules, db, usage = template
    before = gc.get_threshold()
    seen = []
    monkeypatch.setattr(ledger_module, "_checkpoint_hook", lambda step: seen.append(gc.get_threshold()))
    try:
        gc.set_threshold(700, 10, 10)
        with Ledger(copy(db, tmp_path / "gc.db")) as ledger:
            ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=5, jobs=1)
        assert {t for t in seen} == {(flow.YOUNG_THRESHOLD, 10, 10)}
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(50_000, 10, 10)
        seen.clear()
        with Ledger(copy(db, tmp_path / "gc-high.db")) as ledger:
            ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=5, jobs=1)
        assert seen and {t for t in seen} == {(50_000, 10, 10)}
        gc.set_threshold(700, 10, 10)

        def stop(step):
            if step == "committed":
                raise RuntimeError("stopped")

        monkeypatch.setattr(ledger_module, "_checkpoint_hook", stop)
        with Ledger(copy(db, tmp_path / "gc-stop.db")) as ledger, pytest.raises(RuntimeError):
            ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), batch=5, jobs=1)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
