"""Hostile or odd input found by review: each gets a clear, located answer, never a traceback or a
silently wrong bill."""

from __future__ import annotations

import decimal
import os
from decimal import Decimal as D

import pytest

import ratecard
from ratecard.cli import main
from ratecard.errors import PeriodError
from ratecard.periods import parse_period
from ratecard.rating import rate

from conftest import ROOT, TOY_PRICING, TOY_SETTLEMENT, write_rule_set

EXAMPLE = ROOT / "examples" / "usage-2020-09.csv"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("text", ["２０２０-09", "2020-9", "2020-09\n", "9999-12", "0000-01", " 2020-09"])
def test_a_period_is_ascii_yyyy_mm_within_the_calendar(text):
    with pytest.raises(PeriodError):
        parse_period(text)


def test_a_full_width_period_in_usage_is_a_bad_row_not_a_second_month(tmp_path, capsys):
    usage = tmp_path / "u.csv"
    usage.write_text("account,period,api,calls\nacme,2020-09,SearchFaces,10\nacme,２０２０-09,SearchFaces,10\n"
                     "acme,9999-12,SearchFaces,1\n", encoding="utf-8")
    code, out, err = run(capsys, "bill", "--usage", usage)
    assert code == 1 and out == ""
    assert f"{usage}:3: bad period" in err and f"{usage}:4: bad period" in err


@pytest.mark.parametrize("bound", ["1e5000", "1" * 40])
def test_an_absurd_rule_number_is_a_located_error(tmp_path, capsys, bound):
    rules = write_rule_set(tmp_path / "toy", pricing=TOY_PRICING.replace("up_to: 100,", f"up_to: {bound},"))
    code, out, _ = run(capsys, "validate", rules)
    assert code == 1 and out.startswith(f"{rules}/pricing.yaml:10:18: error:") and "is out of range" in out
    assert "write it without quotes" not in out


def test_deep_nesting_and_alias_bombs_are_refused(tmp_path, capsys):
    deep = write_rule_set(tmp_path / "deep", pricing="kind: pricing\nx: " + "[" * 2000 + "]" * 2000 + "\n")
    code, out, _ = run(capsys, "validate", deep)
    assert code == 1 and "nesting is too deep" in out
    lines = ["kind: pricing", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = write_rule_set(tmp_path / "bomb", pricing="\n".join(lines) + "\n")
    code, out, _ = run(capsys, "validate", bomb)
    assert code == 1 and "expands to more than" in out


def test_a_rejects_file_that_is_also_the_usage_is_refused_untouched(tmp_path, capsys):
    usage = tmp_path / "u.csv"
    usage.write_bytes(EXAMPLE.read_bytes())
    code, _, err = run(capsys, "bill", "--usage", usage, "--rejects", usage)
    assert code == 1 and "is the same file as --usage" in err
    assert usage.read_bytes() == EXAMPLE.read_bytes()


@pytest.mark.parametrize("how", ["hard link", "symbolic link", "stdin"])
def test_a_rejects_file_that_is_the_usage_under_another_name_is_refused_untouched(tmp_path, capsys, monkeypatch,
                                                                                 how):
    # issue 11 item 3: a hard link to the usage file, or --usage - with the usage file as standard
    # input, passed the path comparison and the usage file was emptied.
    usage = tmp_path / "u.csv"
    usage.write_bytes(EXAMPLE.read_bytes())
    other = tmp_path / "other.csv"
    if how == "hard link":
        other.hardlink_to(usage)
        args = ("--usage", usage, "--rejects", other)
    elif how == "symbolic link":
        other.symlink_to(usage)
        args = ("--usage", other, "--rejects", usage)
    else:
        monkeypatch.setattr("sys.stdin", open(usage, encoding="utf-8"))
        args = ("--usage", "-", "--rejects", usage)
    for command in ("bill", "settle"):
        extra = ("--period", "2020-09", "--db", tmp_path / "l.db") if command == "settle" else ()
        code, _, err = run(capsys, command, *args, *extra)
        assert code == 1 and "is the same file as" in err and "nothing was read" in err, err
        assert usage.read_bytes() == EXAMPLE.read_bytes()


def test_a_rejects_path_that_is_not_a_regular_file_is_refused(tmp_path, capsys):
    usage = tmp_path / "u.csv"
    usage.write_bytes(EXAMPLE.read_bytes())
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # as /dev/stdin is when the usage is piped in: opening it would block or eat the input
    code, _, err = run(capsys, "bill", "--usage", usage, "--rejects", fifo)
    assert code == 1 and f"--rejects {fifo} is not a regular file" in err
    code, _, err = run(capsys, "bill", "--usage", usage, "--rejects", tmp_path)
    assert code == 1 and "is a folder" in err
    assert run(capsys, "bill", "--usage", usage, "--rejects", os.devnull)[0] == 0  # keep no rejects


@pytest.mark.parametrize("command", ["bill", "settle", "diff"])
def test_rejects_dash_is_refused_not_written_to_a_file_named_dash(tmp_path, capsys, monkeypatch, command):
    # `--rejects -` wrote a file named "-" in the working folder (one was once committed by mistake).
    usage = tmp_path / "u.csv"
    usage.write_bytes(EXAMPLE.read_bytes())
    monkeypatch.chdir(tmp_path)
    rules = ROOT / "rules" / "face-recognition"
    extra = {"settle": ("--period", "2020-09", "--db", tmp_path / "l.db"), "diff": ("--base", rules)}.get(command, ())
    code, _, err = run(capsys, command, "--usage", usage, "--rules", rules, "--rejects", "-", *extra)
    assert code == 1 and "--rejects -: the bad rows are written to a file" in err and "nothing was read" in err, err
    assert not (tmp_path / "-").exists() and not (tmp_path / "l.db").exists()
    assert run(capsys, "bill", "--usage", usage, "--rules", rules, "--rejects", "./-")[0] == 0  # asked for plainly
    assert (tmp_path / "-").read_text(encoding="utf-8").startswith("file,")


def test_usage_from_a_closed_standard_input_is_refused_plainly(capsys, monkeypatch):
    # issue 11 item 12: `bill --usage - <&-` ended in AttributeError ('NoneType' has no 'buffer').
    monkeypatch.setattr("sys.stdin", None)
    code, _, err = run(capsys, "bill", "--usage", "-")
    assert (code, err) == (1, "--usage -: standard input is closed; pipe the usage in, or name a file\n")


def test_a_statement_of_year_one_is_a_period_error_not_an_overflow(tmp_path, capsys):
    # issue 11 item 12: `statement acme --period 0001-01` raised OverflowError (before 0001-01-01 UTC).
    db = tmp_path / "l.db"
    assert run(capsys, "account", "create", "acme", "--currency", "USD", "--db", db)[0] == 0
    code, _, err = run(capsys, "statement", "acme", "--period", "0001-01", "--db", db, "--time-zone", "Asia/Tokyo")
    assert code == 2 and "argument --period: expected a month written YYYY-MM" in err  # a command-line mistake
    assert run(capsys, "statement", "acme", "--period", "0002-01", "--db", db, "--time-zone", "Asia/Tokyo")[0] == 0


def test_an_argument_that_is_not_utf8_is_refused_without_a_traceback(capsys):
    # issue 11 item 12: bytes such as 0xff arrive as lone surrogates, which no output can print.
    word = b"\xff=1".decode("utf-8", "surrogateescape")
    code, out, err = run(capsys, "quote", word)
    assert (code, out) == (2, "")
    assert err == "ratecard: error: the argument '\\xff=1' is not UTF-8 text; write it in UTF-8\n"


def test_odd_counts_and_timestamps_are_bad_rows(tmp_path, capsys):
    calls = tmp_path / "c.jsonl"
    calls.write_text('{"request_id":"1","account":"a","api":"SearchFaces","timestamp":"9999-12-31T23:00:00Z"}\n',
                     encoding="utf-8")
    code, _, err = run(capsys, "bill", "--usage", calls)
    assert code == 1 and f"{calls}:1: 9999-12-31T23:00:00+00:00 is out of the range" in err
    usage = tmp_path / "u.csv"
    usage.write_text("account,period,api,calls\na,2020-09,SearchFaces," + "9" * 300 + "\n", encoding="utf-8")
    code, _, err = run(capsys, "bill", "--usage", usage)
    assert code == 1 and f"{usage}:2: calls must be a whole number" in err
    # Unreadable values on the command line are command-line mistakes (exit 2), never a traceback.
    for word in ("SearchFaces=²", "SearchFaces=١٢", "SearchFaces=" + "9" * 5000):
        assert run(capsys, "quote", word, "--period", "2020-09")[0] == 2
    assert run(capsys, "topup", "acme", "9" * 5000, "--db", tmp_path / "l.db")[0] == 2
    assert main(["bill", "--usage", str(EXAMPLE), "--jobs", "1000000"]) == 2


def test_markdown_invoices_make_account_names_inert():
    rules = ratecard.load_rules(ROOT / "rules" / "face-recognition")
    bill = rate(rules, {"SearchFaces": 1}, "2020-09", account="<script>alert(1)</script>|x")
    text = ratecard.render_invoice(bill, rules.in_force("2020-09")[2], "markdown")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;\\|x" in text


def test_whole_number_rule_values_are_decimals_and_a_fine_quantum_is_shown_unrounded(tmp_path):
    pricing = TOY_PRICING.replace("unit_price: 0.10", "unit_price: 2")
    settlement = TOY_SETTLEMENT.replace("quantum: 0.01, mode: half-even, apply: per-line",
                                        "quantum: 0.0001, mode: half-up, apply: per-bill")
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", pricing=pricing, settlement=settlement))
    bill = rate(rules, {"RenderWidget": 3, "LookupGadget": 1}, "2024-03")
    data = bill.to_dict()
    assert data["lines"][0]["unit_price"] == "2" and data["lines"][1]["unit_price"] == "1.5"
    assert type(bill.lines[0].unit_price) is D and data["rounding"]["quantum"] == "0.0001"
    text = ratecard.render_invoice(bill, rules.in_force("2024-03")[2], "text")
    assert "TOTAL EUR" in text and text.split("TOTAL EUR")[1].split()[0] == "7.50"  # 1.5 + 3 × 2


def test_rounding_does_not_depend_on_the_callers_decimal_context(tmp_path):
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy"))
    policy = rules.in_force("2024-03")[2]
    with decimal.localcontext(decimal.Context(prec=3, traps=[decimal.Inexact])):
        assert policy.rounding(D("148148.145")) == D("148148.14")  # half-even, exact


def test_a_json_record_naming_a_field_twice_or_an_account_with_control_characters_is_a_bad_row(tmp_path, capsys):
    calls = tmp_path / "c.jsonl"
    calls.write_text('{"request_id":"1","account":"acme","account":"evil","api":"SearchFaces",'
                     '"timestamp":"2020-09-01T00:00:00Z"}\n'
                     '{"request_id":"2","account":"a\\u001b[31mb","api":"SearchFaces",'
                     '"timestamp":"2020-09-01T00:00:00Z"}\n', encoding="utf-8")
    code, out, err = run(capsys, "bill", "--usage", calls)
    assert code == 1 and out == ""
    assert f"{calls}:1: malformed JSON: field 'account' appears twice" in err
    assert f"{calls}:2: account 'a\\x1b[31mb' contains control characters" in err
