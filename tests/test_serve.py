"""`ratecard serve` through an in-process client: auth, refusals, the endpoints, reloads, the status cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")

from ratecard.cli import main  # noqa: E402

from conftest import ROOT  # noqa: E402
from serving import READ, READ_TOKEN, USAGE, WRITE, WRITE_TOKEN, client, copy_rules, make_app, make_ledger  # noqa: E402

SHIPPED = ROOT / "rules" / "face-recognition"


@pytest.fixture
def served(tmp_path):
    rules = copy_rules(tmp_path)
    db = make_ledger(tmp_path, rules)
    app = make_app(tmp_path, db=db, rules=(rules, ROOT / "rules" / "face-recognition-cn"), reload_interval=0)
    with client(app) as c:
        c.rules_dir, c.db = rules, db
        yield c


def cli(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["status"] == status and doc["title"] and doc["detail"] and doc["messages"]
    if slug is not None:
        assert doc["type"] == f"https://ratecard.dev/problems/{slug}"
    assert "Traceback" not in response.text
    return doc


# -- auth -------------------------------------------------------------------------------------------------


def test_health_needs_no_token_and_says_nothing_more(served):
    r = served.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "version": __import__("ratecard").__version__}


@pytest.mark.parametrize("path", ["/v1/accounts/acme/status", "/v1/rule-sets", "/openapi.json",
                                  "/v1/rule-sets/face-recognition/ratecard", "/v1/accounts/acme/invoices/2020-09"])
def test_every_other_endpoint_needs_a_token(served, path):
    doc = assert_problem(served.get(path), 401, "unauthorized")
    assert "bearer token" in doc["detail"]


def test_a_missing_token_a_wrong_one_and_another_scheme_are_refused(served):
    missing = served.get("/v1/accounts/acme/status")
    assert missing.headers["www-authenticate"] == 'Bearer realm="ratecard"'
    wrong = served.get("/v1/accounts/acme/status", headers={"Authorization": "Bearer " + READ_TOKEN[:-1] + "x"})
    assert_problem(wrong, 401, "unauthorized")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = served.get("/v1/accounts/acme/status", headers={"Authorization": f"Basic {READ_TOKEN}"})
    assert_problem(basic, 401, "unauthorized")
    assert served.get("/v1/accounts/acme/status", headers=READ).status_code == 200


def test_a_read_token_cannot_write_and_a_write_token_can(served):
    body = {"amount": "2000", "reference": "pay-1", "at": "2020-10-05T10:00:00+08:00"}
    r = served.post("/v1/accounts/acme/topups", json=body, headers=READ)
    doc = assert_problem(r, 403, "insufficient-scope")
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"] and "write" in doc["detail"]
    assert served.get("/v1/accounts/acme/status", headers=READ).json()["state"] == "suspended"  # nothing changed

    r = served.post("/v1/accounts/acme/topups", json=body, headers=WRITE)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] and r.json()["balance"] == "600.00"
    # The same payment again credits nothing.
    assert served.post("/v1/accounts/acme/topups", json=body, headers=WRITE).json()["changed"] is False
    assert served.get("/v1/accounts/acme/status", headers=READ).json()["state"] == "active"


def test_tokens_come_from_a_file_or_the_environment_and_bad_entries_are_located(tmp_path):
    from ratecard.http.auth import READ as R, WRITE as W, Tokens, TokensInvalid

    file = tmp_path / "tokens"
    file.write_text(f"# console\nwrite:{'w' * 20}\n\nread:{'r' * 20}  # gateway\n", encoding="utf-8")
    tokens = Tokens.load(file)
    assert tokens.scope_of("w" * 20) == W and tokens.scope_of("r" * 20) == R
    assert tokens.scope_of("r" * 19) is None and tokens.scope_of("") is None and tokens.scope_of(None) is None
    env = Tokens.from_env({"RATECARD_TOKENS": f"read:{'a' * 16}, write:{'b' * 16}"})
    assert env.scope_of("a" * 16) == R and env.scope_of("b" * 16) == W
    file.write_text(f"read:short\nadmin:{'x' * 20}\nread:{'r' * 20}\nwrite:{'r' * 20}\n", encoding="utf-8")
    with pytest.raises(TokensInvalid) as caught:
        Tokens.load(file)
    assert [p.location.line for p in caught.value.problems] == [1, 2, 4]
    with pytest.raises(TokensInvalid):
        Tokens.from_env({})


def test_tokens_are_compared_in_constant_time(monkeypatch):
    """Every configured token is compared with hmac.compare_digest, without stopping at a match."""
    import hmac

    from ratecard.http import auth

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    tokens = auth.Tokens.parse([(i, f"read:{str(i) * 16}") for i in range(1, 6)], "t")
    assert tokens.scope_of("1" * 16) == "read"
    assert len(calls) == 5


# -- malformed and oversize bodies ----------------------------------------------------------------------


def test_malformed_json_is_a_located_400(served):
    r = served.post("/v1/quote", content=b'{"usage": {"SearchFaces": 3,}}', headers=READ | {"content-type": "application/json"})
    doc = assert_problem(r, 400, "malformed-json")
    assert doc["detail"].startswith("request body:1:")
    for body in (b'{"usage": NaN}', b'{"usage": {}, "usage": {}}', b"", b"\xff\xfe"):
        assert_problem(served.post("/v1/quote", content=body, headers=READ | {"content-type": "application/json"}),
                       400, "malformed-json")


def test_a_body_that_is_not_json_is_a_415(served):
    r = served.post("/v1/quote", content=b"SearchFaces=1", headers=READ | {"content-type": "text/plain"})
    assert_problem(r, 415, "unsupported-media-type")


def test_wrong_member_types_are_400_and_name_the_member(served):
    for body, member in (({"usage": "SearchFaces=1"}, "usage"), ({"usage": {"SearchFaces": -1}}, "usage"),
                         ({"usage": {"SearchFaces": 1.5}}, "usage"), ({"usage": {"SearchFaces": True}}, "usage"),
                         ({"usage": {}, "explain": "yes"}, "explain"), ({"usage": {}, "colour": 1}, "colour"),
                         ([1, 2], "object")):
        doc = assert_problem(served.post("/v1/quote", json=body, headers=READ), 400)
        assert member in doc["detail"]


def test_deep_json_is_refused_before_it_is_parsed(served):
    deep = b'{"usage": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    doc = assert_problem(served.post("/v1/quote", content=deep, headers=READ | {"content-type": "application/json"}),
                         400, "json-too-deep")
    assert "5001 levels" in doc["detail"]
    # Brackets inside strings are text, not nesting.
    flat = json.dumps({"usage": {"SearchFaces": 1}, "rules": "[" * 100}).encode()
    assert_problem(served.post("/v1/quote", content=flat, headers=READ | {"content-type": "application/json"}),
                   404, "unknown-rule-set")


def test_an_oversize_body_is_a_413_whether_or_not_it_declares_its_length(tmp_path):
    app = make_app(tmp_path, max_body=4096)
    with client(app) as c:
        big = json.dumps({"usage": {f"Api{i}": i for i in range(1000)}}).encode()
        assert len(big) > 4096
        r = c.post("/v1/quote", content=big, headers=READ | {"content-type": "application/json"})
        assert_problem(r, 413, "body-too-large")

        def chunks():  # no Content-Length: the server counts as it reads
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000]

        r = c.post("/v1/quote", content=chunks(), headers=READ | {"content-type": "application/json"})
        assert "content-length" not in r.request.headers
        assert_problem(r, 413, "body-too-large")
        r = c.post("/v1/bills/preview", content=b"x" * 5000, headers=READ | {"content-type": "text/csv"})
        assert_problem(r, 413, "body-too-large")


def test_no_traceback_leaves_the_server(served, monkeypatch, caplog):
    import ratecard.quote

    def broken(*args, **kwargs):
        raise ValueError("secret internal detail")

    monkeypatch.setattr(ratecard.quote, "quote_document", broken)
    r = served.post("/v1/quote", json={"usage": {"SearchFaces": 1}, "period": "2020-09"}, headers=READ)
    doc = assert_problem(r, 500, "internal-error")
    assert "secret internal detail" not in r.text and "ValueError" not in r.text
    reference = doc["detail"].rsplit(" ", 1)[-1]
    assert any(reference in rec.getMessage() for rec in caplog.records)  # the log has it


def test_unknown_paths_and_methods_are_problems_too(served):
    assert_problem(served.get("/v2/nothing", headers=READ), 404)
    assert_problem(served.delete("/v1/quote", headers=READ), 405)


# -- quote: the same bytes as the CLI --------------------------------------------------------------------


def test_a_quote_over_http_is_byte_for_byte_the_cli_json(served):
    r = served.post("/v1/quote", json={"usage": {"SearchFaces": 3000001, "CreateGroup": 12, "DetectFace": 7},
                                       "period": "2020-09", "explain": True}, headers=READ)
    assert r.status_code == 200
    done = subprocess.run([sys.executable, "-m", "ratecard", "quote", "SearchFaces=3000001", "CreateGroup=12",
                           "DetectFace=7", "--period", "2020-09", "--explain", "--format", "json",
                           "--rules", str(served.rules_dir)], capture_output=True, check=True)
    assert r.content == done.stdout
    assert r.headers["ratecard-rules-fingerprint"] == json.loads(done.stdout)["rules_fingerprint"]


@pytest.mark.parametrize("words,body", [
    (["SearchFaces:InvalidParameterValue.NoFaceInPhoto=5", "SearchFaces:FailedOperation=9"],
     {"usage": [{"api": "SearchFaces", "calls": 5, "outcome": "InvalidParameterValue.NoFaceInPhoto"},
                {"api": "SearchFaces", "calls": 9, "outcome": "FailedOperation"}]}),
    (["DetectFace=2500000", "--pack", "face-detection=100000", "--suspended"],
     {"usage": {"DetectFace": 2500000}, "packs": {"face-detection": 100000}, "suspended": True,
      "rules": "face-recognition-cn"}),
])
def test_quotes_with_outcomes_packs_and_other_rules_match_the_cli(served, capsys, words, body):
    args = ["quote", *words, "--period", "2020-09", "--format", "json"]
    if body.get("rules") == "face-recognition-cn":
        args += ["--rules", ROOT / "rules" / "face-recognition-cn"]
    else:
        args += ["--rules", served.rules_dir]
    status, out, _ = cli(capsys, *args)
    assert status == 0
    r = served.post("/v1/quote", json=body | {"period": "2020-09"}, headers=READ)
    assert r.status_code == 200 and r.text == out


def test_bad_input_carries_the_cli_messages(served, capsys):
    status, _, err = cli(capsys, "quote", "NoSuchApi=5", "--period", "2020-09", "--rules", served.rules_dir)
    assert status == 1
    doc = assert_problem(served.post("/v1/quote", json={"usage": {"NoSuchApi": 5}, "period": "2020-09"},
                                     headers=READ), 422, "unknown-api")
    assert doc["messages"] == err.splitlines()
    doc = assert_problem(served.post("/v1/quote", json={"usage": {}, "period": "2020-13"}, headers=READ), 422,
                         "bad-period")
    assert "2020-13" in doc["detail"]


# -- rule sets: validate, rate card, diff, reload ---------------------------------------------------------


BROKEN_PRICING = """\
kind: pricing
effective_from: 2020-09-15
currency: usd
unit: call
tier_mode: volume
categories:
  face-search:
    name: Face search
    tiers:
      - { up_to: 3000000, unit_price: "0.0008" }
      - { unit_price: 0.0006 }
"""


def test_validate_of_posted_files_gives_the_cli_problems_at_the_same_places(served, capsys, tmp_path):
    folder = copy_rules(tmp_path / "cli", "face-recognition")
    (folder / "pricing.yaml").write_text(BROKEN_PRICING, encoding="utf-8")
    status, out, _ = cli(capsys, "validate", folder, "--format", "json")
    assert status == 1
    # The errors; the CLI adds warnings about the folder itself (its editor schema links), which posted files do not have.
    expected = [p for p in json.loads(out)["problems"] if p["severity"] == "error"]
    r = served.post("/v1/validate", json={"rule_sets": [
        {"files": {"pricing.yaml": BROKEN_PRICING}, "from": "face-recognition"}]}, headers=READ)
    assert r.status_code == 200
    got = r.json()
    assert got["valid"] is False and got["rule_sets"][0]["valid"] is False
    # Posted files are named as posted; the CLI names them by their folder. Otherwise the same.
    shown = lambda text: text.replace(f"{folder}/", "")  # noqa: E731
    assert [(shown(p["file"]), p["line"], p["column"], shown(p["message"]), p["code"]) for p in got["problems"]] == \
        [(shown(p["file"]), p["line"], p["column"], shown(p["message"]), p["code"]) for p in expected]
    assert "pricing.yaml" in {p["file"] for p in got["problems"]}


def test_validate_and_lint_of_served_rule_sets(served, capsys):
    status, out, _ = cli(capsys, "lint", served.rules_dir, "--format", "json")
    r = served.post("/v1/validate", json={"rule_sets": ["face-recognition"], "lint": True}, headers=READ)
    want = json.loads(out)
    # The CLI also checks the folder's editor schema links (`schema-copy`): a concern of a working copy.
    drift = [p for p in want["problems"] if p["code"] == "schema-copy"]
    want["problems"] = [p for p in want["problems"] if p["code"] != "schema-copy"]
    want["warnings"] -= len(drift)
    assert r.json() == want


def test_rate_card_in_html_markdown_and_json(served):
    import ratecard
    from ratecard.render import render_rate_card

    rules = ratecard.load_rules(served.rules_dir)
    html = served.get("/v1/rule-sets/face-recognition/ratecard", headers=READ)
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.text == render_rate_card(rules, "html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    md = served.get("/v1/rule-sets/face-recognition/ratecard?format=markdown", headers=READ)
    assert md.text == render_rate_card(rules, "markdown")
    doc = served.get("/v1/rule-sets/face-recognition/ratecard", headers=READ | {"accept": "application/json"}).json()
    search = next(c for c in doc["categories"] if c["id"] == "face-search")
    assert [t["unit_price"] for t in search["tiers"]] == ["0.0008", "0.0006", "0.0004"]
    assert search["tiers"][0] == {"tier": 1, "from": 1, "up_to": 3000000, "unit_price": "0.0008"}
    assert_problem(served.get("/v1/rule-sets/nope/ratecard", headers=READ), 404, "unknown-rule-set")


def test_diff_of_a_posted_change_equals_the_cli_diff(served, capsys, tmp_path):
    new_pricing = (served.rules_dir / "pricing.yaml").read_text("utf-8").replace("up_to: 3000000", "up_to: 2500000")
    folder = copy_rules(tmp_path / "new", "face-recognition")
    (folder / "pricing.yaml").write_text(new_pricing, encoding="utf-8")
    usage = tmp_path / "u.csv"
    usage.write_text(USAGE, encoding="utf-8")
    status, out, _ = cli(capsys, "diff", "--base", served.rules_dir, "--rules", folder, "--usage", usage,
                         "--format", "json")
    assert status == 0
    r = served.post("/v1/diff", json={"base": "face-recognition", "usage": USAGE,
                                      "rules": {"files": {"pricing.yaml": new_pricing}, "from": "face-recognition"}},
                    headers=READ)
    assert r.status_code == 200, r.text
    got, want = r.json(), json.loads(out)
    for doc in (got, want):  # the sides are named by where they come from
        for side in ("base", "rules"):
            doc[side].pop("path")
    assert got == want
    assert got["tier_changes"]  # globex and acme cross a bound that moved
    page = served.post("/v1/diff", json={"base": "face-recognition", "usage": USAGE, "format": "html",
                                         "rules": {"files": {"pricing.yaml": new_pricing}, "from": "face-recognition"}},
                       headers=READ)
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text.count("<svg") >= 3 and 'class="cliff"' in page.text
    assert page.headers["ratecard-rules-fingerprint"] == got["rules"]["fingerprint"]


def test_diff_with_invalid_posted_rules_is_a_located_422(served):
    r = served.post("/v1/diff", json={"base": "face-recognition", "usage": USAGE,
                                      "rules": {"files": {"pricing.yaml": BROKEN_PRICING}, "from": "face-recognition"}},
                    headers=READ)
    doc = assert_problem(r, 422, "rule-set-invalid")
    assert any(m.startswith("pricing.yaml:3:11: error:") for m in doc["messages"])
    assert "pricing.yaml" in {p["file"] for p in doc["problems"]}


def test_diff_on_the_servers_usage_files(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text(USAGE, encoding="utf-8")
    with client(make_app(tmp_path, usage=(usage,))) as c:
        r = c.get("/v1/diff?base=face-recognition&format=json", headers=READ)
        assert r.status_code == 200 and r.json()["bills"] == 2 and r.headers["ratecard-rejected-rows"] == "0"
        assert_problem(c.get("/v1/diff", headers=READ), 400)
    with client(make_app(tmp_path)) as c:
        assert_problem(c.get("/v1/diff?base=face-recognition", headers=READ), 400, "no-usage")


def test_an_edited_rule_file_is_served_at_once_and_an_invalid_edit_is_reported_not_served(served):
    before = served.post("/v1/quote", json={"usage": {"SearchFaces": 10}, "period": "2020-09"}, headers=READ).json()
    pricing = served.rules_dir / "pricing.yaml"
    text = pricing.read_text("utf-8")
    pricing.write_text(text.replace("0.0008", "0.0009", 1), encoding="utf-8")
    os.utime(pricing, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    after = served.post("/v1/quote", json={"usage": {"SearchFaces": 10}, "period": "2020-09"}, headers=READ)
    assert after.json()["rules_fingerprint"] != before["rules_fingerprint"]
    assert after.headers["ratecard-rules-fingerprint"] == after.json()["rules_fingerprint"]

    pricing.write_text(text.replace("kind: pricing", "kind: pricing\nbogus: 1"), encoding="utf-8")
    os.utime(pricing, ns=(time.time_ns(), time.time_ns() + 20_000_000))
    still = served.post("/v1/quote", json={"usage": {"SearchFaces": 10}, "period": "2020-09"}, headers=READ).json()
    assert still["rules_fingerprint"] == after.json()["rules_fingerprint"]
    listed = served.get("/v1/rule-sets", headers=READ).json()
    entry = next(s for s in listed["rule_sets"] if s["name"] == "face-recognition")
    assert entry["current"] is False and "bogus" in entry["pending_problems"][0]["message"]


def test_a_request_sees_one_version_of_the_rules(tmp_path):
    """A reload replaces the whole snapshot; one taken before it is unchanged by it."""
    from ratecard.http.state import RulesStore

    folder = copy_rules(tmp_path)
    store = RulesStore([folder], reload_interval=0)
    first = store.current()
    pricing = folder / "pricing.yaml"
    pricing.write_text(pricing.read_text("utf-8").replace("0.0008", "0.0007", 1), encoding="utf-8")
    os.utime(pricing, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    second = store.current()
    assert second is not first and second.version == first.version + 1
    assert first.get(None).rules.fingerprint != second.get(None).rules.fingerprint
    assert first.get(None).files["pricing.yaml"] != second.get(None).files["pricing.yaml"]


def test_the_server_refuses_to_start_on_invalid_rules(tmp_path):
    from ratecard.errors import RuleSetInvalid

    folder = copy_rules(tmp_path)
    (folder / "pricing.yaml").write_text(BROKEN_PRICING, encoding="utf-8")
    with pytest.raises(RuleSetInvalid) as caught:
        make_app(tmp_path, rules=(folder,))
    assert any(str(p).endswith("pricing.yaml:3:11: error: currency: " + p.message) for p in caught.value.problems)


# -- the ledger: status, invoices, previews ----------------------------------------------------------------


def test_status_is_the_cli_json_for_active_suspended_and_unknown(served, capsys):
    for account, state in (("acme", "suspended"), ("globex", "active")):
        status, out, _ = cli(capsys, "status", account, "--db", served.db, "--format", "json",
                             "--service", "face-recognition")
        r = served.get(f"/v1/accounts/{account}/status", headers=READ)
        assert r.status_code == 200 and r.text == out and r.json()["state"] == state
    doc = assert_problem(served.get("/v1/accounts/nobody/status", headers=READ), 404, "unknown-account")
    assert "nobody" in doc["detail"]
    r = served.get("/v1/accounts/globex/status?service=face-recognition-cn", headers=READ)
    assert r.json()["state"] == "not-activated" and r.json()["allowed"] is False


def test_a_suspension_by_another_process_is_seen_by_the_next_request(served, tmp_path):
    """The cache is emptied when the ledger file changes: no waiting for the TTL."""
    assert served.get("/v1/accounts/globex/status", headers=READ).json()["allowed"] is True
    assert served.get("/v1/accounts/globex/status", headers=READ).json()["allowed"] is True  # cached
    # A settle run in another process suspends globex: a month it cannot pay.
    usage = tmp_path / "october.csv"
    usage.write_text("account,period,api,calls,outcome\nglobex,2020-10,SearchFaces,20000000,success\n", "utf-8")
    subprocess.run([sys.executable, "-m", "ratecard", "settle", "--period", "2020-10", "--usage", str(usage),
                    "--rules", str(served.rules_dir), "--db", str(served.db), "--at", "2020-11-02T09:00:00+08:00"],
                   check=True, capture_output=True)
    answer = served.get("/v1/accounts/globex/status", headers=READ).json()
    assert (answer["state"], answer["allowed"]) == ("suspended", False)


def test_a_cached_status_is_never_older_than_the_ttl(tmp_path, monkeypatch):
    """Even when the ledger file's signature misses a change, the TTL bounds how stale an answer is."""
    from ratecard.http import state
    from ratecard.ledger import Ledger

    rules = copy_rules(tmp_path)
    db = make_ledger(tmp_path, rules)
    now = [1000.0]
    access = state.LedgerAccess(db, status_ttl=1.0, clock=lambda: now[0])
    monkeypatch.setattr(access, "signature", lambda: ("blind",))
    assert json.loads(access.status("globex", "face-recognition").body)["state"] == "active"
    with Ledger(db) as ledger:  # suspend globex behind the cache's back: a bill it cannot pay
        reader = __import__("ratecard").usage.UsageReader(__import__("ratecard").load_rules(rules), period="2020-10")
        usage = tmp_path / "october.csv"
        usage.write_text("account,period,api,calls,outcome\nglobex,2020-10,SearchFaces,20000000,success\n", "utf-8")
        reader.read(usage)
        ledger.settle(__import__("ratecard").load_rules(rules), reader.accounts(), "2020-10",
                      __import__("datetime").datetime.fromisoformat("2020-11-02T09:00:00+08:00"))
    now[0] += 0.999
    assert json.loads(access.status("globex", "face-recognition").body)["state"] == "active"  # within the bound
    now[0] += 0.002
    assert json.loads(access.status("globex", "face-recognition").body)["state"] == "suspended"
    access.close()


def test_the_status_cache_is_bounded(tmp_path):
    from ratecard.http import state

    rules = copy_rules(tmp_path)
    db = make_ledger(tmp_path, rules)
    access = state.LedgerAccess(db, status_cache=2)
    for account in ("acme", "globex", "nobody", "acme"):
        access.status(account, "face-recognition")
    assert len(access._cache) == 2 and list(access._cache) == [("nobody", "face-recognition"),
                                                               ("acme", "face-recognition")]
    access.close()


def test_a_stored_invoice_in_every_format(served):
    """As `ratecard invoice show` gives it: by period or number, from what the ledger recorded."""
    from ratecard.ledger import Ledger
    from ratecard.reprint import rendered

    with Ledger(served.db, readonly=True) as ledger:
        number, document, data, text = ledger.document("globex", "2020-09")
    r = served.get("/v1/accounts/globex/invoices/2020-09", headers=READ)
    assert r.text == text and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["ratecard-rules-fingerprint"] == data["bill"]["rules_fingerprint"]
    assert served.get(f"/v1/accounts/globex/invoices/{number}", headers=READ).text == text
    for fmt in ("json", "html", "markdown"):
        got = served.get(f"/v1/accounts/globex/invoices/2020-09?format={fmt}", headers=READ)
        assert got.status_code == 200 and got.text == rendered(number, document, data, fmt), fmt
    pdf = served.get("/v1/accounts/globex/invoices/2020-09?format=pdf", headers=READ)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert_problem(served.get("/v1/accounts/globex/invoices/2020-08", headers=READ), 404, "no-invoice")
    assert_problem(served.get("/v1/accounts/nobody/invoices/2020-09", headers=READ), 404)
    assert_problem(served.get("/v1/accounts/globex/invoices/2020-09?format=docx", headers=READ), 400)

    # A recorded document does not change when the served rules do.
    html = served.get("/v1/accounts/globex/invoices/2020-09?format=html", headers=READ).text
    pricing = served.rules_dir / "pricing.yaml"
    pricing.write_text(pricing.read_text("utf-8").replace("0.0006", "0.0005", 1), encoding="utf-8")
    os.utime(pricing, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert served.post("/v1/quote", json={"usage": {"SearchFaces": 3000001}, "period": "2020-09"},
                       headers=READ).json()["rules_fingerprint"] != data["bill"]["rules_fingerprint"]
    assert served.get("/v1/accounts/globex/invoices/2020-09?format=html", headers=READ).text == html


def test_bill_preview_of_a_posted_usage_file(served):
    import ratecard

    rules = ratecard.load_rules(served.rules_dir)
    r = served.post("/v1/bills/preview", content=USAGE.encode(), headers=READ | {"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [b["account"] for b in doc["bills"]] == ["acme", "globex"]
    assert doc["bills"][1] == ratecard.rate(rules, [("SearchFaces", 3000001, "success"), ("DetectFace", 1000, "success")],
                                            "2020-09", account="globex").to_dict()
    assert doc["reconciliation"]["balanced"] is True
    bad = USAGE + "initech,2020-09,SearchFaces,-5,success\n"
    doc = assert_problem(served.post("/v1/bills/preview", content=bad.encode(),
                                     headers=READ | {"content-type": "text/csv"}), 422, "usage-invalid")
    assert doc["problems"][0]["file"] == "request body" and doc["problems"][0]["line"] == 5
    assert doc["messages"][0].startswith("request body:5: ")
    kept = served.post("/v1/bills/preview?rejects=report", content=bad.encode(),
                       headers=READ | {"content-type": "text/csv"}).json()
    assert len(kept["bills"]) == 2 and kept["rejected"][0]["row"] == 5


def test_accounts_are_created_and_activated_with_a_write_token(served):
    r = served.post("/v1/accounts", json={"account": "wonka", "currency": "USD", "at": "2020-10-01T00:00:00+08:00"},
                    headers=WRITE)
    assert r.status_code == 201 and r.json()["account"]["id"] == "wonka"
    assert served.get("/v1/accounts/wonka/status", headers=READ).json()["state"] == "not-activated"
    r = served.post("/v1/accounts/wonka/activation", json={"terms": "2020-09", "at": "2020-10-01T00:00:00+08:00"},
                    headers=WRITE)
    assert r.status_code == 200 and r.json()["changed"]
    assert served.get("/v1/accounts/wonka/status", headers=READ).json()["state"] == "active"
    assert_problem(served.post("/v1/accounts", json={"account": "x", "currency": "USD", "at": "yesterday"},
                               headers=WRITE), 400)
    assert_problem(served.post("/v1/accounts/nobody/topups", json={"amount": "5"}, headers=WRITE), 404,
                   "unknown-account")
    assert_problem(served.post("/v1/accounts/acme/topups", json={"amount": "-5"}, headers=WRITE), 422)


def test_without_a_ledger_ledger_endpoints_answer_503(tmp_path):
    with client(make_app(tmp_path)) as c:
        assert_problem(c.get("/v1/accounts/acme/status", headers=READ), 503, "no-ledger")
        assert c.post("/v1/quote", json={"usage": {"SearchFaces": 1}, "period": "2020-09"}, headers=READ).status_code == 200


def test_the_server_writes_nothing_outside_the_ledger(tmp_path, monkeypatch):
    """Every endpoint exercised; afterwards the only new files are the ledger's own."""
    rules = copy_rules(tmp_path)
    db = make_ledger(tmp_path, rules)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    with client(make_app(tmp_path, db=db, rules=(rules,), reload_interval=0)) as c:
        c.post("/v1/quote", json={"usage": {"SearchFaces": 1}, "period": "2020-09"}, headers=READ)
        c.post("/v1/bills/preview", content=USAGE.encode(), headers=READ | {"content-type": "text/csv"})
        c.post("/v1/validate", json={"rule_sets": [{"files": {"pricing.yaml": BROKEN_PRICING}}]}, headers=READ)
        c.post("/v1/diff", json={"base": "face-recognition", "usage": USAGE, "format": "html"}, headers=READ)
        c.get("/v1/rule-sets/face-recognition/ratecard", headers=READ)
        c.get("/v1/accounts/acme/invoices/2020-09?format=html", headers=READ)
        c.get("/v1/accounts/acme/status", headers=READ)
        c.post("/v1/accounts/acme/topups", json={"amount": "1"}, headers=WRITE)
        c.get("/openapi.json", headers=READ)
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    changed = {p.name for p in after if before.get(p) != after[p]}
    assert changed <= {"ledger.db", "ledger.db-wal", "ledger.db-shm"}, changed
    assert not any(work.iterdir()) and not any((tmp_path / "tmp").iterdir())


# -- the OpenAPI document -----------------------------------------------------------------------------


def test_the_openapi_document_uses_the_clis_json_schemas(served):
    doc = served.get("/openapi.json", headers=READ).json()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    for name, file in (("Bill", "bill.schema.json"), ("Pricing", "pricing.schema.json"),
                       ("ApiMapping", "api-mapping.schema.json"), ("Settlement", "settlement.schema.json")):
        assert schemas[name] == json.loads((ROOT / "schemas" / file).read_text("utf-8"))
    ops = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert {("/health", "get"), ("/v1/accounts/{account}/status", "get"), ("/v1/quote", "post"),
            ("/v1/bills/preview", "post"), ("/v1/rule-sets/{name}/ratecard", "get"), ("/v1/validate", "post"),
            ("/v1/diff", "post"), ("/v1/diff", "get"), ("/v1/accounts/{account}/invoices/{ref}", "get"),
            ("/v1/accounts/{account}/topups", "post")} <= ops
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert doc["paths"]["/v1/accounts/{account}/topups"]["post"]["security"] == [{"bearer": ["write"]}]
    assert doc["paths"]["/v1/quote"]["post"]["security"] == [{"bearer": ["read"]}]
    # Every local reference resolves.
    text = json.dumps(doc)
    for ref in set(__import__("re").findall(r'"\$ref": "#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in doc["components"][ref[0]]
    # A quote response validates against the Bill schema the document names.
    import jsonschema

    bill = served.post("/v1/quote", json={"usage": {"SearchFaces": 3}, "period": "2020-09"}, headers=READ).json()
    jsonschema.validate(bill, schemas["Bill"])


def test_serve_is_not_imported_by_the_library_or_status():
    code = ("import sys, ratecard, ratecard.cli, ratecard.rating, ratecard.ledger; "
            "from ratecard.cli import main; "
            "print(any(m.split('.')[0] in ('starlette', 'uvicorn') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_only_the_http_package_imports_starlette():
    engine = ROOT / "engine"
    for path in engine.rglob("*.py"):
        if "http" in path.relative_to(engine).parts:
            continue
        text = path.read_text("utf-8")
        assert "import starlette" not in text and "from starlette" not in text, path


def test_the_status_fast_path_answers_as_the_framework_route_would(served):
    """GET status is answered in front of Starlette; the Starlette route gives the same answers."""
    framework = client(served.app.app)
    for path, headers in (("/v1/accounts/acme/status", READ), ("/v1/accounts/globex/status?service=face-recognition",
                                                                READ),
                          ("/v1/accounts/nobody/status", READ), ("/v1/accounts/acme/status", {}),
                          ("/v1/accounts/acme/status", {"Authorization": "Bearer not-a-token-at-all"})):
        fast, slow = served.get(path, headers=headers), framework.get(path, headers=headers)
        assert (fast.status_code, fast.text, fast.headers["content-type"]) == \
            (slow.status_code, slow.text, slow.headers["content-type"])
        assert fast.headers.get("www-authenticate") == slow.headers.get("www-authenticate")
        assert fast.headers["x-content-type-options"] == "nosniff"


def test_a_failure_on_the_fast_path_is_a_500_problem_without_a_traceback(served, monkeypatch):
    server = served.app.state.ratecard

    def broken(account, service):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.ledger, "status", broken)
    r = served.get("/v1/accounts/acme/status", headers=READ)
    assert_problem(r, 500, "internal-error")
    assert "disk on fire" not in r.text


def test_a_browser_may_send_the_token_as_a_basic_password_for_pages_only(served):
    import base64

    basic = {"Authorization": "Basic " + base64.b64encode(f"analyst:{READ_TOKEN}".encode()).decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"analyst:guess-guess-guess-guess").decode()}
    page = served.get("/v1/rule-sets/face-recognition/ratecard", headers=basic)
    assert page.status_code == 200 and page.text.startswith("<!DOCTYPE html>")
    assert served.get("/v1/accounts/globex/invoices/2020-09?format=html", headers=basic).status_code == 200
    assert_problem(served.get("/v1/rule-sets/face-recognition/ratecard", headers=wrong), 401)
    # A browser that has no token yet is asked for one; an API client only sees the Bearer challenge.
    asked = served.get("/v1/rule-sets/face-recognition/ratecard", headers={"accept": "text/html,*/*"})
    assert 'Basic realm="ratecard"' in asked.headers["www-authenticate"]
    assert served.get("/v1/rule-sets/face-recognition/ratecard").headers["www-authenticate"] == 'Bearer realm="ratecard"'
    # Everything that is not a page takes a bearer token only.
    assert_problem(served.get("/v1/accounts/acme/status", headers=basic), 401)
    assert_problem(served.get("/v1/rule-sets", headers=basic), 401)
    assert_problem(served.post("/v1/quote", json={"usage": {}}, headers=basic), 401)
    assert_problem(served.post("/v1/accounts/acme/topups", json={"amount": "1"}, headers={
        "Authorization": "Basic " + base64.b64encode(f"x:{WRITE_TOKEN}".encode()).decode()}), 401)
