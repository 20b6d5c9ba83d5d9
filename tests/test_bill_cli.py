"""`ratecard bill`: usage files in, one invoice per account out, then the reconciliation."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ratecard.cli import main
from ratecard.render import TemplateError, make_environment, render

from conftest import ROOT

EXAMPLES = ROOT / "examples"
EXAMPLE_MONTH = EXAMPLES / "usage-2020-09.csv"
EXAMPLE_CALLS = EXAMPLES / "calls-2020-09-30.jsonl"
BILL_SCHEMA = ROOT / "schemas" / "bill.schema.json"
AGG_HEADER = "account,period,api,calls,outcome\n"
CALLS_HEADER = "request_id,account,api,timestamp,outcome\n"
RECONCILIATION = re.compile(r"^(rows|calls): ([\d,]+) read = ([\d,]+) accepted \+ ([\d,]+) rejected \+ "
                            r"([\d,]+) duplicate \+ ([\d,]+) out of period(?: \d{4}-\d\d)?$", re.M)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # File names in messages are shown as typed, relative to the working directory.
    monkeypatch.chdir(tmp_path)


def bill(capsys, *args):
    status = main(["bill", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def write(name: str, text: str) -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def reconciliation(text: str) -> dict[str, tuple[int, ...]]:
    """{"rows": (read, accepted, rejected, duplicate, out of period), "calls": (...)} from a run's summary."""
    found = {m[1]: tuple(int(n.replace(",", "")) for n in m.groups()[1:]) for m in RECONCILIATION.finditer(text)}
    assert set(found) == {"rows", "calls"}, text
    return found


def bills_of(jsonl_text: str) -> list[dict]:
    return [json.loads(line) for line in jsonl_text.splitlines()]


def calls_by_category(bill_dict: dict) -> dict[str, tuple[int, int]]:
    return {line["category"]: (line["calls"], line["free_calls"]) for line in bill_dict["lines"]}


# One bad row of every class, between good rows; the expected FILE:ROW and a piece of the reason.
BAD_AGGREGATED = (AGG_HEADER
                  + "good,2020-09,SearchFaces,100,success\n"          # 2
                  + "bad,2020-09,,5,success\n"                        # 3 missing api
                  + "bad,2020-09,SearchFaces,-4,success\n"            # 4 negative calls
                  + "bad,2020-09,SearchFaces,1.5,success\n"           # 5 not a whole number
                  + "bad,2020-13,SearchFaces,5,success\n"             # 6 bad period
                  + "bad,2020-09,SearchFacez,5,success\n"             # 7 unknown API
                  + " ,2020-09,SearchFaces,5,success\n"               # 8 empty account
                  + "good,2020-09,DetectFace,7,\n")                   # 9
BAD_AGGREGATED_ROWS = [(3, "missing field 'api'"), (4, "must not be negative"), (5, "whole number"),
                       (6, "2020-13"), (7, "unknown API 'SearchFacez'"), (8, "empty account")]
BAD_CALLS = (CALLS_HEADER
             + "r1,good,VerifyFace,2020-09-10T10:00:00Z,success\n"    # 2
             + "r2,bad,VerifyFace,yesterday,success\n"                # 3 bad timestamp
             + "r3,bad,VerifyFace,2020-09-10T10:00:00,success\n"      # 4 no UTC offset
             + "r4,bad,VerifyFace,,success\n")                        # 5 missing timestamp
BAD_CALLS_ROWS = [(3, "bad timestamp 'yesterday'"), (4, "no UTC offset"), (5, "missing field 'timestamp'")]


# -- bad rows ----------------------------------------------------------------------------------------


def test_strict_mode_lists_every_bad_row_and_bills_nothing(capsys):
    write("usage.csv", BAD_AGGREGATED)
    write("calls.csv", BAD_CALLS)
    status, out, err = bill(capsys, "--usage", "usage.csv", "--usage", "calls.csv")
    assert status == 1
    assert out == ""  # no invoice, not even the good accounts'
    listed = [line for line in err.splitlines() if re.match(r"^(usage|calls)\.csv:\d+: ", line)]
    expected = [("usage.csv", n, why) for n, why in BAD_AGGREGATED_ROWS] + \
               [("calls.csv", n, why) for n, why in BAD_CALLS_ROWS]
    assert len(listed) == len(expected), err
    for file, row, why in expected:
        assert any(line.startswith(f"{file}:{row}: ") and why in line for line in listed), (file, row, why, err)
    assert "9 bad usage row(s); nothing was billed" in err
    assert "Traceback" not in err


def test_rejects_file_gets_every_bad_row_with_its_reason_and_the_rest_is_billed(capsys):
    write("usage.csv", BAD_AGGREGATED)
    write("calls.csv", BAD_CALLS)
    status, out, err = bill(capsys, "--usage", "usage.csv", "--usage", "calls.csv", "--rejects", "bad.csv",
                            "--format", "jsonl")
    assert status == 0
    with open("bad.csv", newline="", encoding="utf-8") as fh:
        rejects = list(csv.DictReader(fh))
    assert [(r["file"], int(r["row"])) for r in rejects] == \
        [("usage.csv", n) for n, _ in BAD_AGGREGATED_ROWS] + [("calls.csv", n) for n, _ in BAD_CALLS_ROWS]
    for r, (_, why) in zip(rejects, BAD_AGGREGATED_ROWS + BAD_CALLS_ROWS):
        assert why in r["reason"]
    raw_lines = (BAD_AGGREGATED + BAD_CALLS).splitlines()
    assert all(r["raw"] in raw_lines for r in rejects)  # the row as it was read, to fix and re-run
    bills = bills_of(out)
    assert [(b["account"], b["period"]) for b in bills] == [("good", "2020-09")]
    assert calls_by_category(bills[0]) == {"face-detection": (7, 0), "face-search": (100, 0),
                                           "face-verification": (1, 0)}
    assert "9 bad rows written to bad.csv" in err
    rows, calls = reconciliation(err).values()
    assert rows == (12, 3, 9, 0, 0)
    # A bad row counts its calls when they can be read (-4 and 1.5 cannot: 0), a call record one call.
    assert calls == (108 + 4 * 5 + 3, 108, 4 * 5 + 3, 0, 0)


def test_the_example_month_fails_on_its_unknown_api_row_unless_rejected(capsys):
    status, out, err = bill(capsys, "--usage", EXAMPLE_MONTH)
    assert (status, out) == (1, "")
    assert re.search(r"usage-2020-09\.csv:30: .*unknown API 'DetectLiveFaceAccurate'", err)
    status, out, err = bill(capsys, "--usage", EXAMPLE_MONTH, "--rejects", "rejects.csv")
    assert status == 0 and out.count("INVOICE ") == 13
    assert "1 bad row written to rejects.csv" in err  # the summary: standard output is the invoices


# -- the reconciliation ------------------------------------------------------------------------------


def _check_sums(found):
    for read, *parts in found.values():
        assert read == sum(parts)


def test_reconciliation_adds_up_rows_and_calls(capsys):
    write("calls.csv", CALLS_HEADER
          + "r1,acme,DetectFace,2020-09-10T10:00:00Z,success\n"
          + "r1,acme,DetectFace,2020-09-10T10:00:00Z,success\n"         # duplicate
          + "r2,acme,DetectFace,2020-10-10T10:00:00Z,success\n"         # October
          + "r3,acme,DetectFace,not a time,success\n"                   # rejected
          + "r4,globex,CreateGroup,2020-09-30T15:59:59Z,success\n")     # still September in Beijing
    write("usage.csv", AGG_HEADER
          + "acme,2020-09,SearchFaces,1000,success\n"
          + "acme,2020-08,SearchFaces,50,success\n"                     # out of period
          + "acme,2020-09,SearchFaces,-1,success\n")                    # rejected, calls unknown
    status, out, err = bill(capsys, "--usage", "calls.csv", "--usage", "usage.csv", "--period", "2020-09",
                            "--rejects", "bad.csv")
    assert status == 0
    found = reconciliation(err)
    _check_sums(found)
    assert found["rows"] == (8, 3, 2, 1, 2)
    assert found["calls"] == (1 + 1 + 1 + 1 + 1 + 1000 + 50, 1002, 1, 1, 51)
    assert "out of period 2020-09" in err
    # What was accepted is what was billed.
    assert "billed 2 invoices" in err


def test_the_example_calls_reconcile_with_and_without_a_period(capsys):
    _, _, err = bill(capsys, "--usage", EXAMPLE_CALLS)
    assert reconciliation(err) == {"rows": (10, 9, 0, 1, 0), "calls": (10, 9, 0, 1, 0)}
    _, _, err = bill(capsys, "--usage", EXAMPLE_CALLS, "--period", "2020-10")
    assert reconciliation(err) == {"rows": (10, 5, 0, 1, 4), "calls": (10, 5, 0, 1, 4)}


# -- duplicates and the time zone -----------------------------------------------------------------


def test_a_request_id_seen_twice_is_counted_once_across_files(capsys):
    write("a.jsonl", "".join(json.dumps({"request_id": f"id-{i}", "account": "acme", "api": "SearchFaces",
                                         "timestamp": "2020-09-05T12:00:00+08:00", "outcome": "success"}) + "\n"
                             for i in (1, 2, 2, 3)))
    write("b.csv", CALLS_HEADER + "id-3,acme,SearchFaces,2020-09-05T04:00:00Z,success\n"
          + "id-4,acme,SearchFaces,2020-09-05T04:00:00Z,success\n")
    status, out, err = bill(capsys, "--usage", "a.jsonl", "--usage", "b.csv", "--format", "jsonl")
    assert status == 0
    [acme] = bills_of(out)
    assert calls_by_category(acme) == {"face-search": (4, 0)}
    assert reconciliation(err)["rows"] == (6, 4, 0, 2, 0)


def test_many_duplicates_within_a_small_memory_limit_and_a_spill_dir_left_clean(capsys, tmp_path):
    # Copies of one request id, of one account each, spread over three accounts: counted once.
    # (Copies naming another account are bad rows: test_usage's conflicting request ids.)
    scratch = tmp_path / "scratch"
    lines = [CALLS_HEADER]
    for i in range(600):
        lines.append(f"id-{i % 400},acct-{i % 400 % 3},DetectFace,2020-09-10T10:00:00Z,success\n")
    write("calls.csv", "".join(lines))
    status, out, err = bill(capsys, "--usage", "calls.csv", "--format", "jsonl", "--memory-limit", "32MiB",
                            "--spill-dir", str(scratch))
    assert status == 0
    assert list(scratch.iterdir()) == []
    assert reconciliation(err)["rows"] == (600, 400, 0, 200, 0)
    assert sum(calls_by_category(b)["face-detection"][0] for b in bills_of(out)) == 400


def test_the_beijing_month_boundary(capsys):
    status, out, err = bill(capsys, "--usage", EXAMPLE_CALLS, "--format", "jsonl")
    assert status == 0
    got = {(b["account"], b["period"]): calls_by_category(b) for b in bills_of(out)}
    assert got == {
        # 2020-09-30T15:59:59Z, 23:59:59+08:00: still September in Beijing.
        ("acme", "2020-09"): {"face-search": (2, 0)},
        # 2020-10-01T00:00:00+08:00 and 2020-09-30T16:00:00Z (a billable no-face error): October.
        ("acme", "2020-10"): {"face-detection": (2, 0)},
        ("globex", "2020-09"): {"group-management": (0, 1)},  # a free API
        # SPEC's 2020-09-30T23:30:00Z is October; a free error code is shown as free.
        ("globex", "2020-10"): {"face-comparison": (1, 1)},
        ("initech", "2020-09"): {"face-verification": (1, 0)},
        ("initech", "2020-10"): {"face-verification": (1, 0)},
    }
    status, out, _ = bill(capsys, "--usage", EXAMPLE_CALLS, "--format", "jsonl", "--period", "2020-10")
    assert {(b["account"], b["period"]) for b in bills_of(out)} == {
        ("acme", "2020-10"), ("globex", "2020-10"), ("initech", "2020-10")}


# -- inputs ------------------------------------------------------------------------------------------


def test_gzip_input_bills_the_same_as_plain(capsys, tmp_path):
    Path("month").write_bytes(gzip.compress(EXAMPLE_MONTH.read_bytes()))  # no .gz suffix needed
    Path("calls.jsonl.gz").write_bytes(gzip.compress(EXAMPLE_CALLS.read_bytes()))
    plain = bill(capsys, "--usage", EXAMPLE_MONTH, "--usage", EXAMPLE_CALLS, "--rejects", "r1.csv")
    packed = bill(capsys, "--usage", "month", "--usage", "calls.jsonl.gz", "--rejects", "r2.csv")
    assert plain[0] == packed[0] == 0
    assert plain[1].replace("r1.csv", "r2.csv") == packed[1]
    assert "INVOICE" in packed[1]
    assert Path("r2.csv").read_text("utf-8").splitlines()[1].startswith("month,30,")


def test_standard_input_in_process(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXAMPLE_CALLS.read_bytes())))
    status, out, err = bill(capsys, "--usage", "-", "--format", "jsonl")
    assert status == 0
    assert out == bill(capsys, "--usage", EXAMPLE_CALLS, "--format", "jsonl")[1]


@pytest.mark.parametrize("compress", [False, True])
def test_standard_input_of_the_command(compress):
    data = BAD_CALLS.encode()
    done = subprocess.run([sys.executable, "-m", "ratecard", "bill", "--usage", "-", "--format", "jsonl"],
                          input=gzip.compress(data) if compress else data, capture_output=True, cwd=ROOT)
    err = done.stderr.decode()
    assert (done.returncode, done.stdout) == (1, b"")
    for row, why in BAD_CALLS_ROWS:
        assert any(line.startswith(f"<stdin>:{row}: ") and why in line for line in err.splitlines()), err
    assert "Traceback" not in err
    done = subprocess.run([sys.executable, "-m", "ratecard", "bill", "--usage", "-", "--format", "jsonl",
                           "--rejects", "/dev/null"],
                          input=gzip.compress(data) if compress else data, capture_output=True, cwd=ROOT)
    assert done.returncode == 0
    assert [b["account"] for b in bills_of(done.stdout.decode())] == ["good"]


# -- outputs -----------------------------------------------------------------------------------------


HOSTILE = "<script>alert(1)</script>"


def _hostile_usage() -> Path:
    return write("usage.csv", AGG_HEADER + f"{HOSTILE},2020-09,SearchFaces,10,success\n"
                 + "a/b,2020-09,SearchFaces,20,success\n" + "../up,2020-09,SearchFaces,30,success\n"
                 + "acme,2020-09,SearchFaces,40,success\n")


@pytest.mark.parametrize("fmt, ext", [("text", "txt"), ("markdown", "md"), ("html", "html"), ("json", "json")])
def test_out_writes_one_safe_file_per_account(capsys, tmp_path, fmt, ext):
    _hostile_usage()
    status, out, err = bill(capsys, "--usage", "usage.csv", "--format", fmt, "--out", "invoices")
    assert status == 0 and err == ""
    assert "billed 4 invoices" in out and "written to invoices" in out
    files = sorted(Path("invoices").iterdir())
    assert len(files) == 4  # one per account, none outside the folder, none in a subfolder
    assert all(f.is_file() and re.fullmatch(rf"[a-z0-9._+-]+\.2020-09\.{ext}", f.name) for f in files)
    assert not Path("up.2020-09." + ext).exists() and not Path("a").exists()
    assert Path("invoices/acme.2020-09." + ext).is_file()  # a plain id is kept as it is
    texts = [f.read_text("utf-8") for f in files]
    if fmt == "json":
        assert sorted(json.loads(t)["account"] for t in texts) == sorted(["acme", "a/b", "../up", HOSTILE])
    # Each file is that account's invoice as it appears on standard output (html: its body, in the book).
    _, stdout, _ = bill(capsys, "--usage", "usage.csv", "--format", fmt)
    if fmt == "html":
        texts = [t.split("<body>\n", 1)[1].split("</body>", 1)[0] for t in texts]
    assert all(t.rstrip("\n") in stdout for t in texts)


def test_invoice_file_names_never_collide_even_ignoring_case():
    from ratecard.billrun import invoice_filename

    tricky = ["acme", "Acme", "ACME", "a/b", "a_b", "a\\b", "a:b", HOSTILE, "..", ".", "", "con", "CON", "nul.txt",
              "x" * 100, "x" * 100 + "y", "é", "e", "-", "_"]
    tricky.append(invoice_filename("a/b", "2020-09", "text").split(".")[0])  # an id made to look like a hashed one
    names = [invoice_filename(a, "2020-09", "text") for a in tricky]
    assert len({n.lower() for n in names}) == len(tricky)
    # ASCII ids give ASCII lower-case names (capitals and the rest escaped with +), never starting with a dot.
    assert all(re.fullmatch(r"[a-z0-9_+-][a-z0-9._+-]*\.2020-09\.txt", n) and len(n) < 220
               for a, n in zip(tricky, names) if a.isascii())
    assert names[tricky.index("é")] == "é.2020-09.txt"  # a lower-case letter of any script is kept
    assert invoice_filename("acme", "2020-09", "html") == "acme.2020-09.html"  # plain ids stay readable
    assert names[tricky.index("con")].split(".")[0].upper() != "CON"


def test_out_with_jsonl_writes_one_stream(capsys):
    _hostile_usage()
    status, out, _ = bill(capsys, "--usage", "usage.csv", "--format", "jsonl", "--out", "invoices")
    assert status == 0
    assert [p.name for p in Path("invoices").iterdir()] == ["bills.jsonl"]
    assert len(bills_of(Path("invoices/bills.jsonl").read_text("utf-8"))) == 4


def test_an_account_named_script_renders_inert_in_html(capsys):
    _hostile_usage()
    status, out, _ = bill(capsys, "--usage", "usage.csv", "--format", "html")
    assert status == 0
    assert "<script" not in out.lower()
    assert out.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 1  # the account line
    assert "<!DOCTYPE html>" in out  # the template's own markup is not escaped
    status, _, _ = bill(capsys, "--usage", "usage.csv", "--format", "html", "--out", "one")
    single = next(p for p in Path("one").iterdir() if "script" in p.read_text("utf-8").lower())
    assert single.read_text("utf-8").count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2  # title and account


def _validator():
    if not BILL_SCHEMA.exists():
        return None
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(BILL_SCHEMA.read_text("utf-8")))


def test_json_is_an_array_of_bills_that_validate(capsys):
    status, out, err = bill(capsys, "--usage", EXAMPLE_MONTH, "--rejects", "bad.csv", "--format", "json")
    assert status == 0
    bills = json.loads(out)  # standard output is one JSON document: the summary went to stderr
    assert isinstance(bills, list) and len(bills) == 13
    assert "billed 13 invoices" in err
    validator = _validator()
    if validator is not None:
        for b in bills:
            validator.validate(b)
    assert [b["account"] for b in bills] == sorted(b["account"] for b in bills)
    globex = next(b for b in bills if b["account"] == "globex")
    assert (globex["subtotal"], globex["total"]) == ("1800.0006", "1800.00")


def test_jsonl_is_one_bill_per_line(capsys):
    status, out, err = bill(capsys, "--usage", EXAMPLE_MONTH, "--usage", EXAMPLE_CALLS, "--rejects", "bad.csv",
                            "--format", "jsonl")
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 13 + 3  # the month's 13 accounts in September, 3 of them again in October
    assert all(line.startswith("{") and line.endswith("}") for line in lines)
    bills = [json.loads(line) for line in lines]
    validator = _validator()
    if validator is not None:
        for b in bills:
            validator.validate(b)
    keys = [(b["account"], b["period"]) for b in bills]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def _many_accounts(n: int) -> Path:
    rng = random.Random(20200930)
    apis = ["DetectFace", "AnalyzeFace", "CompareFace", "VerifyFace", "SearchFaces", "CreatePerson",
            "CreateGroup", "DetectLiveFace"]
    rows = [AGG_HEADER]
    for i in range(n):
        for api in rng.sample(apis, 3):
            rows.append(f"acct-{i:05d},2020-09,{api},{rng.choice([0, 1, 2_999_999, 3_000_001, rng.randrange(10**8)])},"
                        f"{rng.choice(['success', '', 'InvalidParameterValue.NoFaceInPhoto', 'Busy'])}\n")
    return write("many.csv", "".join(rows))


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_workers_give_byte_identical_output(capsys, monkeypatch, fmt):
    import ratecard.billrun

    _many_accounts(2_100)  # above the size at which the default uses every core
    monkeypatch.setattr(ratecard.billrun, "CHUNK", 97)  # more chunks than are in flight at once
    runs = {jobs: bill(capsys, "--usage", "many.csv", "--format", fmt, *(["--jobs", jobs] if jobs else []))
            for jobs in (1, 2, None)}
    assert all(status == 0 for status, _, _ in runs.values())
    assert runs[1][1] == runs[2][1] == runs[None][1]
    assert runs[1][2] == runs[2][2] == runs[None][2]
    assert runs[1][1].count("acct-") >= 2_100


def test_jobs_on_a_small_file(capsys):
    one = bill(capsys, "--usage", EXAMPLE_MONTH, "--rejects", "bad.csv", "--format", "html", "--jobs", "1")
    two = bill(capsys, "--usage", EXAMPLE_MONTH, "--rejects", "bad.csv", "--format", "html", "--jobs", "2")
    assert one == two and one[0] == 0


def test_two_runs_are_byte_identical(capsys):
    runs = []
    for n in (1, 2):
        status, out, err = bill(capsys, "--usage", EXAMPLE_MONTH, "--usage", EXAMPLE_CALLS, "--rejects",
                                f"bad{n}.csv", "--out", f"out{n}", "--format", "text")
        files = {p.name: p.read_bytes() for p in sorted(Path(f"out{n}").iterdir())}
        runs.append((status, out.replace(f"out{n}", "OUT").replace(f"bad{n}", "BAD"), err, files,
                     Path(f"bad{n}.csv").read_bytes()))
    assert runs[0] == runs[1]
    assert len(runs[0][3]) == 16


# -- progress ----------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def slow_clock(monkeypatch):
    """Every reading of the clock is ten seconds later: each account looks like a long run."""
    import time

    now = [0.0]

    def tick():
        now[0] += 10
        return now[0]

    monkeypatch.setattr(time, "monotonic", tick)


@pytest.mark.parametrize("terminal, quiet, shown", [(True, False, True), (False, False, False),
                                                    (True, True, False)])
def test_progress_only_on_a_terminal_and_not_when_quiet(capsys, monkeypatch, slow_clock, terminal, quiet, shown):
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    status = main(["bill", "--usage", str(EXAMPLE_MONTH), "--rejects", "bad.csv", "--format", "jsonl", "--jobs", "1",
                   *(["--quiet"] if quiet else [])])
    assert status == 0
    progress = stderr.getvalue()
    assert ("billing: 13/13 accounts" in progress) is shown
    assert "billed 13 invoices" in progress  # the summary is not progress: it is always there


# -- templates ---------------------------------------------------------------------------------------


def _template(tmp_path, name: str, text: str):
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return make_environment(folder)


def test_an_undefined_variable_fails_naming_the_template_file_and_line(tmp_path):
    env = _template(tmp_path, "invoice.txt.j2", "Invoice\n{{ bill.account }}\nTotal {{ bill.totl }}\n")
    with pytest.raises(TemplateError) as caught:
        render("invoice.txt.j2", {"bill": {"account": "acme", "total": 1}}, env)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'templates' / 'invoice.txt.j2'}:3: ")
    assert "totl" in message
    env = _template(tmp_path, "typo.txt.j2", "{{ acount }}\n")
    with pytest.raises(TemplateError, match=r"typo\.txt\.j2:1: UndefinedError: 'acount' is undefined"):
        render("typo.txt.j2", {"account": "acme"}, env)


@pytest.mark.parametrize("text", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ bill.__init__.__globals__ }}",
    "{{ bill.account.__len__() }}",
    "{{ bill|attr('__class__') }}",
    "{{ '{0.__class__}'.format(bill) }}",
    "{{ bill.lines.append(1) }}",
    "{% for i in range(10**9) %}{% endfor %}",
    "{{ 1 / 0 }}",
])
def test_a_hostile_template_is_stopped_with_a_clear_error(tmp_path, text):
    env = _template(tmp_path, "evil.txt.j2", "first line\n" + text + "\n")

    class Bill:
        account = "acme"
        lines: list = []

    for _ in range(2):  # the second time, too: the sandbox remembers its verdicts, never a pass
        with pytest.raises(TemplateError) as caught:
            render("evil.txt.j2", {"bill": Bill()}, env)
        assert re.match(r".*evil\.txt\.j2:2: \w+Error: ", str(caught.value)), caught.value
        # Reported as the template's problem: no chained traceback from Jinja's internals.
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_sandbox_is_what_stops_it(tmp_path):
    # The same template outside the sandbox reaches Python's internals: the test above is not vacuous.
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "evil.txt.j2").write_text("{{ ''.__class__.__mro__ }}", encoding="utf-8")
    assert "object" in render("evil.txt.j2", {}, make_environment(folder, sandboxed=False))
    with pytest.raises(TemplateError, match="unsafe"):
        render("evil.txt.j2", {}, make_environment(folder))


def test_html_templates_are_autoescaped_and_text_ones_are_not(tmp_path):
    env = _template(tmp_path, "x.html.j2", "<p>{{ name }}</p>")
    assert render("x.html.j2", {"name": HOSTILE}, env) == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    env = _template(tmp_path, "x.txt.j2", "{{ name }}")
    assert render("x.txt.j2", {"name": HOSTILE}, env) == HOSTILE


def test_an_output_folder_that_cannot_be_made_is_reported_without_a_traceback(tmp_path, capsys):
    from ratecard.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    code = main(["bill", "--usage", str(EXAMPLE_MONTH), "--rejects", str(tmp_path / "r.csv"),
                 "--out", str(blocker / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and str(blocker / "out") in err
