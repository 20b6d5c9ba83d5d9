"""A streamed settlement whose report cannot be written, whose caller fails, or that stops part-way
(found by review, issue 10): the report is written while accounts are settled, so a failing standard
output (`| head`, a full disk) must not stop the settlement part-way with most accounts unbilled; a
caller's failing `on_account` is a `SettleInterrupted` naming what is recorded; and a run that stops
part-way leaves a report that says so (JSON that still parses and validates)."""

from __future__ import annotations

import errno
import io
import json
import sqlite3
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ratecard.cli import main
from ratecard.errors import RatecardError
from ratecard.ledger import Ledger, SettleInterrupted
from ratecard.ledger.flow import UsageOrderError

from conftest import write_rule_set
from test_output_schemas import validate
from test_settle_stream import HELD, at, copy, template  # noqa: F401 - the module's fixture

BERLIN = ZoneInfo("Europe/Berlin")
SIX = [f"acct-{n:02d}" for n in range(6)]


@pytest.fixture
def six(tmp_path):
    """Six activated accounts with usage, settled in batches of 2 by the CLI."""
    rules = write_rule_set(tmp_path / "toy")
    db = tmp_path / "ledger.db"
    jan = datetime(2024, 1, 1, tzinfo=BERLIN)
    with Ledger(db, create=True) as ledger:
        for account in SIX:
            ledger.create_account(account, account.upper(), "EUR", jan)
            ledger.activate(account, "toy", "v1", jan)
    usage = tmp_path / "u.csv"
    usage.write_text("account,period,api,calls\n" + "".join(f"{a},2024-01,RenderWidget,{n + 1}\n"
                                                           for n, a in enumerate(SIX)), encoding="utf-8")
    args = ["settle", "--period", "2024-01", "--usage", str(usage), "--rules", str(rules), "--db", str(db),
            "--at", datetime(2024, 2, 6, 10, tzinfo=BERLIN).isoformat(), "--batch", "2", "--jobs", "1"]
    return args, db


def billed(db) -> list[str]:
    with Ledger(db, readonly=True) as ledger:
        return [b.account for b in ledger.bills()]


class _GoneAfter(io.StringIO):
    """Standard output that fails after `writes` writes: its reader went away, or its disk filled up."""

    def __init__(self, writes: int, error: OSError):
        super().__init__()
        self.left, self.error = writes, error

    def write(self, text):
        if self.left <= 0:
            raise self.error
        self.left -= 1
        return super().write(text)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_reader_gone_from_standard_output_stops_the_report_not_the_settlement(six, monkeypatch, capsys, fmt):
    args, db = six
    monkeypatch.setattr(sys, "stdout", _GoneAfter(2, BrokenPipeError(errno.EPIPE, "Broken pipe")))
    code = main([*args, "--format", fmt])
    assert billed(db) == SIX  # every account, not only the first batch
    assert code == 0 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_full_disk_under_the_report_settles_every_account_and_says_the_report_is_incomplete(six, monkeypatch,
                                                                                              capsys, fmt):
    args, db = six
    monkeypatch.setattr(sys, "stdout", _GoneAfter(2, OSError(errno.ENOSPC, "No space left on device")))
    code = main([*args, "--format", fmt])
    err = capsys.readouterr().err
    assert billed(db) == SIX
    assert code == 1 and "Traceback" not in err
    assert ("the settlement of 2024-01 is recorded (6 accounts: 6 settled, 0 already settled, 0 not settled), but its "
            "report could not be written to standard output: No space left on device; settling again changes nothing"
            ) in err


def test_a_caller_failing_on_an_account_is_a_settle_interrupted_naming_what_is_recorded(template, tmp_path):
    rules, db, usage = template
    seen: list[str] = []

    def report_line(settled) -> None:  # the caller's writer: its disk fills up at the 4th account
        if len(seen) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        seen.append(settled.account)

    with Ledger(copy(db, tmp_path / "s.db")) as ledger:
        with pytest.raises(SettleInterrupted) as stopped:
            ledger.settle(rules, iter(usage), "2024-01", at(2024, 2, 6, 10), hold=HELD, batch=3, jobs=1,
                          on_account=report_line)
        recorded = [b.account for b in ledger.bills()]
    assert list(stopped.value.recorded) == recorded and len(recorded) >= 4  # the 4th's batch is committed too
    assert "No space left on device" in str(stopped.value) and "handing over its result" in str(stopped.value)


def test_usage_that_cannot_be_read_on_after_batches_are_recorded_is_a_settle_interrupted(template, tmp_path):
    rules, db, usage = template

    def failing():
        yield from usage[:4]
        raise OSError(errno.EIO, "spill file lost")  # e.g. the usage engine's own failure, mid-way

    with Ledger(copy(db, tmp_path / "s.db")) as ledger:
        with pytest.raises(SettleInterrupted) as stopped:
            ledger.settle(rules, failing(), "2024-01", at(2024, 2, 6, 10), hold=HELD, batch=2, jobs=1,
                          on_account=lambda settled: None)
        recorded = [b.account for b in ledger.bills()]
    assert recorded and list(stopped.value.recorded) == recorded
    assert "the usage could not be read on after account" in str(stopped.value) and "spill file lost" in str(stopped.value)
    assert issubclass(UsageOrderError, RatecardError)  # never a traceback at a surface


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_settlement_stopped_part_way_leaves_a_report_that_says_so(six, monkeypatch, capsys, fmt):
    import ratecard.ledger as ledger_module

    args, db = six
    bills: list[str] = []

    def disk_full_at_the_fourth_bill(name):
        if name == "billed":
            bills.append(name)
            if len(bills) == 4:
                raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ledger_module, "_checkpoint_hook", disk_full_at_the_fourth_bill)
    code = main([*args, "--format", fmt])
    out, err = capsys.readouterr()
    assert code == 1 and "Recorded before it, and kept: 3 account(s)" in err and billed(db) == SIX[:3]
    if fmt == "json":
        document = json.loads(out)
        validate("settle.schema.json", document)
        assert document["interrupted"]["recorded"] == 3 and document["interrupted"]["not_recorded"] == SIX[3:]
        assert [a["account"] for a in document["accounts"]] == SIX[:3] and "unbilled" not in document
    else:
        assert out.endswith("\nstopped part-way: 3 accounts recorded, 3 accounts not (see standard error)\n")
