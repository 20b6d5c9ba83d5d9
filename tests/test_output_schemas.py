"""Every JSON document ratecard prints has a JSON Schema in schemas/ (draft 2020-12), and real
output of each validates against it; every decimal in them follows the one spelling rule
(docs/json.md, `ratecard.exact.decimal_text`)."""

import contextlib
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from referencing import Registry, Resource

from ratecard.cli import main
from ratecard.exact import decimal_text
from ratecard.formatting import money_text

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = {p.name: json.loads(p.read_text("utf-8")) for p in sorted((ROOT / "schemas").glob("*.json"))}
OUTPUT_SCHEMAS = ("bill.schema.json", "status.schema.json", "account.schema.json", "account-list.schema.json",
                  "pack-purchase.schema.json", "pack-list.schema.json", "statement.schema.json",
                  "settle.schema.json", "reconciliation.schema.json", "validation.schema.json",
                  "diff.schema.json", "document.schema.json", "account-import.schema.json",
                  "health.schema.json", "rule-sets.schema.json", "ratecard.schema.json", "ledger-write.schema.json",
                  "bill-preview.schema.json")
REGISTRY = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())
CN = ROOT / "rules" / "face-recognition-cn"
INTL = ROOT / "rules" / "face-recognition"
AT = "2020-09-16T00:00:00+08:00"
SETTLED_AT = "2020-10-02T00:00:00+08:00"


def validate(schema: str, document) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMAS[schema], registry=REGISTRY,
                                                format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, "\n".join(errors[:10])


class Run:
    """`ratecard` in-process against one ledger, keeping each command's standard output."""

    def __init__(self, db: Path):
        self.db = db

    def __call__(self, *args, ledger: bool = True, codes=(0,)) -> str:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args] + (["--db", str(self.db)] if ledger else []))
        assert code in codes, f"ratecard {' '.join(map(str, args))} exited {code}:\n{out.getvalue()}\n{err.getvalue()}"
        return out.getvalue()

    def json(self, *args, **kw):
        return json.loads(self(*args, "--format", "json", **kw))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The China-site book (packs, deposits): two accounts settled for 2020-09, one corrected later."""
    tmp = tmp_path_factory.mktemp("site")
    run = Run(tmp / "ledger.db")
    for account in ("lotus", "peony"):
        run("account", "create", account, "--currency", "CNY", "--at", AT)
        run("account", "activate", account, "--rules", CN, "--terms", "v1", "--at", AT)
        run("topup", account, "5000", "--at", AT)
    usage = tmp / "usage.csv"
    usage.write_text("account,period,api,calls,outcome\nlotus,2020-09,AnalyzeFace,8000,success\nlotus,2020-09,SearchFaces,60000,success\n"
                     "peony,2020-09,SearchFaces,2000000,success\n", encoding="utf-8")
    outputs = {"pack buy": run.json("pack", "buy", "lotus", "face-search", "100k", "--rules", CN, "--at", AT),
               "settle": run.json("settle", "--period", "2020-09", "--usage", usage, "--rules", CN,
                                  "--at", SETTLED_AT)}
    later = tmp / "later.csv"
    later.write_text(usage.read_text() + "peony,2020-09,AnalyzeFace,200000,success\n", encoding="utf-8")
    outputs["settle again"] = run.json("settle", "--period", "2020-09", "--usage", later, "--rules", CN,
                                       "--at", "2020-10-20T00:00:00+08:00")
    supplementary = next(a["invoice"] for a in outputs["settle again"]["accounts"] if a["account"] == "peony")
    outputs |= {
        "status": run.json("status", "lotus", "--rules", CN),
        "account show": run.json("account", "show", "lotus"),
        "account list": run.json("account", "list"),
        "pack list": run.json("pack", "list", "lotus", "--rules", CN, "--at", SETTLED_AT),
        "statement": run.json("statement", "lotus", "--period", "2020-09"),
        "statement, all time": run.json("statement", "peony"),
        "invoice": run.json("invoice", "show", "peony", "2020-09"),
        "supplementary invoice": run.json("invoice", "show", "peony", supplementary),
    }
    return outputs


@pytest.mark.parametrize("name, schema", [
    ("status", "status.schema.json"), ("account show", "account.schema.json"),
    ("account list", "account-list.schema.json"), ("pack buy", "pack-purchase.schema.json"),
    ("pack list", "pack-list.schema.json"), ("statement", "statement.schema.json"),
    ("statement, all time", "statement.schema.json"), ("settle", "settle.schema.json"),
    ("settle again", "settle.schema.json"), ("invoice", "document.schema.json"),
    ("supplementary invoice", "document.schema.json")])
def test_ledger_json_output_validates_against_its_schema(site, name, schema):
    validate(schema, site[name])


def test_account_import_json_validates_against_its_schema(tmp_path):
    run = Run(tmp_path / "ledger.db")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account,currency,name,country\nacme,USD,Acme Corp,DE\nglobex,USD,,US\n", encoding="utf-8")
    first = run.json("account", "import", accounts)
    again = run.json("account", "import", accounts)
    for document in (first, again):
        validate("account-import.schema.json", document)
    assert (first["created"], again["unchanged"], again["created"]) == (["acme", "globex"], ["acme", "globex"], [])


def test_the_scenario_exercises_what_the_schemas_describe(site):
    # Not vacuous: entries, packs, charges, a correction's changed lines are all there to be checked.
    assert site["settle"]["accounts"] and site["settle"]["accounts"][0]["entries"]
    assert site["pack list"]["packs"][0]["history"] and site["statement"]["charges"]
    assert site["supplementary invoice"]["kind"] == "supplementary-invoice" and site["supplementary invoice"]["lines"]
    validate("reconciliation.schema.json", site["settle"]["reconciliation"])


def test_ledger_money_has_the_currencys_minor_unit_digits(site):
    # CNY has two: "0.00", "4682.00", never "0" or "4682" beside them.
    amounts = []

    def walk(value, key=""):
        if isinstance(value, dict):
            if "bill" in value and "invoice" in value:
                value = {k: v for k, v in value.items() if k != "bill"}  # the bill keeps its own digits
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value) and key not in ("units",):
            amounts.append((key, value))

    for name in ("status", "account show", "pack buy", "pack list", "statement", "settle", "settle again",
                 "supplementary invoice"):
        walk(site[name])
    assert len(amounts) > 50
    short = [(k, v) for k, v in amounts if len(v.partition(".")[2]) < 2]
    assert not short, short


def test_a_bill_keeps_the_digits_of_its_computation(site):
    bill = site["invoice"]["bill"]
    validate("bill.schema.json", bill)
    assert bill["total"] == "4980.00" or re.fullmatch(r"[0-9]+\.[0-9]{2}", bill["total"])


def test_quote_bill_and_jsonl_validate_against_the_bill_schema(tmp_path):
    run = Run(tmp_path / "unused.db")
    quote = run.json("quote", "SearchFaces=3000001", "CreateGroup=2", "--period", "2020-09", "--rules", INTL,
                     ledger=False)
    validate("bill.schema.json", quote)
    assert quote["lines"][0]["amount"] == "1800.0006" and quote["total"] == "1800.00"
    bills = run.json("bill", "--usage", ROOT / "examples" / "usage-2020-09.csv", "--rules", INTL,
                     "--rejects", tmp_path / "rejects.csv", ledger=False)
    assert len(bills) == 13
    for bill in bills:
        validate("bill.schema.json", bill)


def test_validate_and_lint_json_validate_against_the_validation_schema(tmp_path):
    run = Run(tmp_path / "unused.db")
    validate("validation.schema.json", run.json("validate", INTL, CN, ledger=False))
    linted = run.json("lint", INTL, CN, ledger=False)
    validate("validation.schema.json", linted)
    assert linted["acknowledged"] > 0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pricing.yaml").write_text("kind: pricing\ncurrency: usd\n", encoding="utf-8")
    failed = run.json("validate", broken, ledger=False, codes=(1,))
    validate("validation.schema.json", failed)
    assert failed["problems"] and not failed["valid"]


def test_diff_json_validates_against_the_diff_schema(tmp_path):
    run = Run(tmp_path / "unused.db")
    changed = tmp_path / "changed"
    import shutil

    shutil.copytree(INTL, changed)
    pricing = changed / "pricing.yaml"
    pricing.write_text(pricing.read_text("utf-8").replace("0.0008", "0.0012"), encoding="utf-8")
    result = run.json("diff", "--base", INTL, "--rules", changed, "--usage", ROOT / "examples" / "usage-2020-09.csv",
                      "--rejects", tmp_path / "rejects.csv", "--alert-pct", "5", ledger=False)
    validate("diff.schema.json", result)
    assert result["total"]["change"] != "0.00" and result["alerts"]


def test_every_output_schema_is_a_titled_draft_2020_12_schema_with_a_consistent_id():
    for name in OUTPUT_SCHEMAS:
        schema = SCHEMAS[name]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"https://ratecard.dev/schemas/{name}"
        assert schema["title"] and schema["description"]
        for key, definition in schema.get("$defs", {}).items():
            assert definition.get("description"), f"{name}: $defs/{key} has no description"
        if name != "bill.schema.json":
            assert "docs/json.md" in schema["description"]  # the decimal rule, named where it applies


def test_the_http_status_and_validate_answers_match_the_clis_schemas(tmp_path):
    from serving import READ, client, copy_rules, make_app, make_ledger

    rules = copy_rules(tmp_path)
    with client(make_app(tmp_path, db=make_ledger(tmp_path, rules), rules=(rules,), reload_interval=0)) as http:
        for account in ("acme", "globex"):  # suspended in arrears, active
            status = http.get(f"/v1/accounts/{account}/status", headers=READ)
            assert status.headers["content-type"].startswith("application/json"), status.text
            validate("status.schema.json", status.json())
        checked = http.post("/v1/validate", headers=READ, json={"rule_sets": ["face-recognition"]})
        assert checked.status_code == 200, checked.text
        validate("validation.schema.json", checked.json())
        doc = http.get("/openapi.json", headers=READ).json()
    for component, file in (("Status", "status.schema.json"), ("Validation", "validation.schema.json"),
                            ("Diff", "diff.schema.json"), ("Document", "document.schema.json")):
        assert doc["components"]["schemas"][component] == SCHEMAS[file]


def test_every_other_http_json_answer_validates_against_its_schema(tmp_path):
    from serving import READ, WRITE, client, copy_rules, make_app, make_ledger

    rules = copy_rules(tmp_path)
    usage = "account,period,api,calls,outcome\nacme,2020-09,SearchFaces,3000001,success\nacme,2020-09,Nope,5,\n"
    with client(make_app(tmp_path, db=make_ledger(tmp_path, rules), rules=(rules,), reload_interval=0)) as http:
        answers = {
            "health.schema.json": [http.get("/health")],
            "rule-sets.schema.json": [http.get("/v1/rule-sets", headers=READ)],
            "ratecard.schema.json": [http.get("/v1/rule-sets/face-recognition/ratecard?format=json", headers=READ)],
            "bill-preview.schema.json": [http.post("/v1/bills/preview?rejects=report", content=usage,
                                                   headers=READ | {"content-type": "text/csv"})],
            "ledger-write.schema.json": [
                http.post("/v1/accounts", json={"account": "initech", "currency": "USD",
                                                "at": "2020-09-01T00:00:00+08:00"}, headers=WRITE),
                http.post("/v1/accounts/initech/activation", json={"terms": "2020-09", "at": "2020-09-01T00:00:00+08:00"},
                          headers=WRITE),
                http.post("/v1/accounts/initech/topups", json={"amount": "25.50", "at": "2020-09-02T00:00:00+08:00"},
                          headers=WRITE)],
        }
    for schema, responses in answers.items():
        for response in responses:
            assert response.status_code in (200, 201), response.text
            validate(schema, response.json())
    preview = answers["bill-preview.schema.json"][0].json()
    assert [r["row"] for r in preview["rejected"]] == [3] and preview["bills"]


# -- the one decimal spelling -----------------------------------------------------------------------

SPELLING = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


@given(st.decimals(min_value=-10**15, max_value=10**15, allow_nan=False, allow_infinity=False), st.integers(0, 4))
def test_decimal_text_is_exact_fixed_point_and_never_rounds(value, places):
    text = decimal_text(value, places)
    assert SPELLING.fullmatch(text), text
    assert not (text.startswith("-") and Decimal(text) == 0), text  # no "-0"
    assert Decimal(text) == value
    assert len(text.partition(".")[2]) >= places
    assert len(text.partition(".")[2]) >= max(0, -value.as_tuple().exponent)  # every digit it has


@pytest.mark.parametrize("value", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("places", [0, 2])
def test_decimal_text_refuses_a_value_that_is_not_a_finite_decimal(value, places):
    with pytest.raises(ValueError, match="not a finite decimal"):
        decimal_text(Decimal(value), places)


def test_money_text_pads_to_the_currencys_minor_units_and_keeps_more():
    assert money_text(Decimal("318"), "CNY") == "318.00"
    assert money_text(Decimal("0"), "USD") == "0.00"
    assert money_text(Decimal("-0"), "USD") == "0.00"
    assert money_text(Decimal("1200"), "JPY") == "1200"
    assert money_text(Decimal("19.000"), "CNY") == "19.000"  # an unrounded amount keeps its digits
    assert money_text(Decimal("12.345"), "USD") == "12.345"  # a writer never rounds
    assert money_text(Decimal("1E+3"), "USD") == "1000.00"
    assert decimal_text(Decimal("0.0000")) == "0.0000" and decimal_text(Decimal("2400.0000")) == "2400.0000"
