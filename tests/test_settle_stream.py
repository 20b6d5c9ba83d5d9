"""A streamed settlement (issue 10 item 6): usage merged batch by batch with the accounts to settle, each
account's result handed over as its batch commits, the report keeping only what `complete` needs. It
records the same ledger and says the same as a settlement that keeps every account, and the CLI's
text and JSON written as it goes are byte for byte what the whole report gives."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

import ratecard
from ratecard.cli.settle import _JsonStream, _TextStream, _settle_text, _tail_text
from ratecard.ledger import Ledger, SettleInterrupted
from ratecard.ledger.flow import UsageOrderError
from ratecard.rating import UsageItem
from ratecard.usage import AccountUsage

from conftest import write_rule_set
from test_settle_batches import at  # noqa: F401 - also used by test_settle_report_failures

ACCOUNTS = [f"acct-{n:02d}" for n in range(10)]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Ten accounts of every kind a report lists: billed, in arrears, with no usage, in the wrong
    currency (failed), held; and usage of accounts not settled (not activated, activated after the
    period, not in the ledger), interleaved with theirs in account order."""
    root = tmp_path_factory.mktemp("stream")
    rules = ratecard.load_rules(write_rule_set(root / "toy"))
    db = root / "template.db"
    with Ledger(db, create=True) as ledger:
        for n, account in enumerate(ACCOUNTS):
            ledger.create_account(account, account.upper(), "USD" if n == 5 else "EUR", at(2024, 1, 1))
            ledger.activate(account, "toy", "v1", at(2024, 1, 1))
            ledger.top_up(account, "5" if n == 4 else "100", at(2024, 1, 1))
        ledger.create_account("acct-03x", "NOT ACTIVATED", "EUR", at(2024, 1, 1))
        ledger.create_account("acct-06x", "LATE", "EUR", at(2024, 1, 1))
        ledger.activate("acct-06x", "toy", "v1", at(2024, 2, 3))
    extra = {"acct-03x": 5, "acct-06x": 6, "acct-08x": 7, "zz-unknown": 8}
    usage = sorted([AccountUsage(a, "2024-01", (UsageItem("RenderWidget", 30 * n + 1), UsageItem("LookupGadget", n)))
                    for n, a in enumerate(ACCOUNTS) if n != 7]
                   + [AccountUsage(a, "2024-01", (UsageItem("RenderWidget", c),)) for a, c in extra.items()],
                   key=lambda u: u.account)
    return rules, db, usage


def copy(db: Path, to: Path) -> Path:
    shutil.copy(db, to)
    return to


def dump(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {table: con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
                for table in ("bills", "documents", "entries", "debits", "accounts", "services")}
    finally:
        con.close()


HELD = {"acct-02"}


def kept(template, tmp_path, **options):
    rules, db, usage = template
    with Ledger(copy(db, tmp_path / "kept.db")) as ledger:
        return ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), hold=HELD, **options), tmp_path / "kept.db"


def streamed(template, tmp_path, usage=None, **options):
    rules, db, given = template
    events: list = []
    with Ledger(copy(db, tmp_path / "streamed.db")) as ledger:
        report = ledger.settle(rules, iter(given if usage is None else usage), "2024-01", at(2024, 2, 6, 10),
                               hold=HELD, on_start=lambda head, accounts: events.append(("start", head, accounts)),
                               on_account=lambda settled: events.append(("account", settled)), **options)
    return report, events, tmp_path / "streamed.db"


@pytest.mark.parametrize("batch, jobs", [(1, 1), (3, 1), (100, 1), (3, 2)])
def test_a_streamed_settlement_records_and_reports_what_a_kept_one_does(template, tmp_path, batch, jobs):
    whole, whole_db = kept(template, tmp_path, batch=batch, jobs=jobs)
    report, events, db = streamed(template, tmp_path, batch=batch, jobs=jobs)
    assert dump(db) == dump(whole_db)
    # The accounts, in account order, each once its batch was committed; the head before any of them.
    assert events[0][0] == "start" and all(kind == "account" for kind, *_ in events[1:])
    _, head, accounts = events[0]
    assert accounts == tuple(a.account for a in whole.accounts) == tuple(sorted(set(ACCOUNTS) - HELD))
    assert (head.accounts, head.unbilled, head.collected, head.schedule) == ((), (), whole.collected, whole.schedule)
    assert tuple(settled for _, settled in events[1:]) == whole.accounts
    # The report keeps none of them, yet answers as the kept one does.
    assert report.accounts == () and report.streamed is not None
    assert report.outcomes == whole.outcomes == {"settled": 8, "corrected": 0, "already-settled": 0, "failed": 1}
    assert report.settled_count == whole.settled_count == 9
    assert report.failed == whole.failed and [f.account for f in report.failed] == ["acct-05"]
    assert "the account is in USD" in report.failed[0].problem
    assert report.unrecorded == whole.unrecorded == ()
    assert report.unbilled == whole.unbilled
    assert [(u.account, u.calls, u.reason) for u in report.unbilled] == [
        ("acct-02", 63, "has rejected usage rows: settled once they are fixed"),
        ("acct-03x", 5, "has not activated toy"),
        ("acct-06x", 6, "activated toy only at 2024-02-02T23:00:00+00:00, after the period ended"),
        ("acct-08x", 7, "is not in the ledger"),
        ("zz-unknown", 8, "is not in the ledger")]
    assert not report.complete and not whole.complete
    with pytest.raises(ValueError, match="streamed"):
        report.to_dict()


def test_a_streamed_settlement_run_again_reports_every_account_already_settled(template, tmp_path):
    rules, _, usage = template
    _, _, db = streamed(template, tmp_path)
    seen = []
    with Ledger(db) as ledger:
        again = ledger.settle(rules, iter(usage), "2024-01", at(2024, 2, 6, 11), hold=HELD, on_account=seen.append)
    assert [(s.account, s.outcome) for s in seen if s.outcome != "already-settled"] == [("acct-05", "failed")]
    assert again.outcomes == {"settled": 0, "corrected": 0, "already-settled": 8, "failed": 1}


def test_the_library_keeps_every_account_and_takes_usage_in_any_order(template, tmp_path):
    rules, db, usage = template
    with Ledger(copy(db, tmp_path / "shuffled.db")) as ledger:
        shuffled = ledger.settle(rules, list(reversed(usage)), "2024-01", at(2024, 2, 6, 10), hold=HELD)
    whole, _ = kept(template, tmp_path)
    assert shuffled.streamed is None and shuffled.accounts == whole.accounts and shuffled.unbilled == whole.unbilled
    assert dump(tmp_path / "shuffled.db") == dump(tmp_path / "kept.db")


def test_streamed_usage_out_of_order_or_of_another_period_is_refused_before_anything_is_written(template, tmp_path):
    rules, db, usage = template
    before = dump(db)
    swapped = [usage[1], usage[0], *usage[2:]]  # acct-01's usage before acct-00's: both in the first batch
    with pytest.raises(UsageOrderError, match="usage of acct-00 comes after that of acct-01"):
        streamed(template, tmp_path, usage=swapped, batch=3)
    assert dump(tmp_path / "streamed.db") == before
    other = [AccountUsage("acct-00", "2023-12", (UsageItem("RenderWidget", 1),))]
    with pytest.raises(UsageOrderError, match="usage of acct-00 is for 2023-12, not 2024-01"):
        streamed(template, tmp_path, usage=other)
    assert dump(tmp_path / "streamed.db") == before


def test_streamed_usage_out_of_order_after_batches_were_recorded_says_which_and_a_re_run_bills_it(template,
                                                                                                  tmp_path):
    rules, db, usage = template
    # acct-00's usage comes after acct-04's: the first batch (acct-00, acct-01, acct-03) is recorded,
    # acct-00 without its usage, before the second batch's usage shows the disorder.
    first = next(u for u in usage if u.account == "acct-00")
    rest = [u for u in usage if u is not first]
    four = next(i for i, u in enumerate(rest) if u.account == "acct-04")
    late = [*rest[:four + 1], first, *rest[four + 1:]]
    with pytest.raises(SettleInterrupted) as stopped:
        streamed(template, tmp_path, usage=late, batch=3, jobs=1)
    assert stopped.value.recorded == ("acct-00", "acct-01", "acct-03") and stopped.value.done == ()
    assert "stopped at account acct-04: usage of acct-00 comes after that of acct-04" in str(stopped.value)
    assert "Recorded before it, and kept: 3 account(s): acct-00, acct-01, acct-03." in str(stopped.value)
    db = tmp_path / "streamed.db"
    with Ledger(db) as ledger:
        assert [(b.account, b.total) for b in ledger.bills()] == [
            ("acct-00", Decimal("0.00")), ("acct-01", Decimal("4.60")), ("acct-03", Decimal("13.60"))]
        again = ledger.settle(rules, iter(usage), "2024-01", at(2024, 2, 6, 11), hold=HELD, on_account=lambda s: None)
        assert ledger.verify() == []
    # The run with the usage in order bills acct-00 what it was not billed, and the rest.
    assert again.outcomes == {"settled": 5, "corrected": 1, "already-settled": 2, "failed": 1}


def test_the_text_and_json_written_as_accounts_come_are_those_of_the_whole_report(template, tmp_path):
    whole, _ = kept(template, tmp_path, batch=3, jobs=1)
    head = type(whole)(whole.period, whole.service, whole.rules_fingerprint, whole.at, whole.schedule,
                       whole.collected)
    names = tuple(a.account for a in whole.accounts)
    extra = {"reconciliation": {"rows": {"read": 3}}, "rejects": {"file": "r.csv", "rows": 1, "accounts_held": []}}
    for stream_type in (_TextStream, _JsonStream):
        out = io.StringIO()
        stream = stream_type(out)
        stream.start(head, names)
        for settled in whole.accounts:
            stream.account(settled)
        if stream_type is _JsonStream:
            stream.finish(whole, extra)
            assert out.getvalue() == json.dumps(whole.to_dict() | extra, indent=2, ensure_ascii=False) + "\n"
        else:
            out.write("\n".join(_tail_text(whole)) + "\n")
            assert out.getvalue() == "\n".join(_settle_text(whole)) + "\n"
    # No account at all: an empty list, no blank line for the accounts' block.
    empty = type(whole)(whole.period, whole.service, whole.rules_fingerprint, whole.at, whole.schedule)
    out = io.StringIO()
    stream = _JsonStream(out)
    stream.start(empty, ())
    stream.finish(empty, extra)
    assert out.getvalue() == json.dumps(empty.to_dict() | extra, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    _TextStream(out).start(empty, ())
    assert out.getvalue() + "\n".join(_tail_text(empty)) + "\n" == "\n".join(_settle_text(empty)) + "\n"
