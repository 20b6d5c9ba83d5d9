"""Rule sets over HTTP: the served ones, their rate cards, and validate and diff of served or posted sets.

A rule set in a request body is either the name of a served one, or posted files:
``{"files": {"pricing.yaml": "...YAML..."}, "from": "NAME"}`` — the posted files, laid over the
served set `from` when given (so an analyst posts only the file they edited). Posted files are
validated in memory and never written anywhere; problems name them as posted (``pricing.yaml:12:5``).
"""

from __future__ import annotations

import io
import json
import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...errors import RuleSetInvalid
from ..common import READ, Endpoint, Server, choice, field, json_body, only_members, rules_now, text_body
from ..problems import BODY_NAME, bad_request, read_json
from ..state import check_files

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.ya?ml")
_SET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MAX_FILES = 32
REJECTED_HEADER = "Ratecard-Rejected-Rows"  # bad usage rows skipped (rejects: report)


def _posted(spec: dict, snapshot, where: str):
    """Posted files (over a served set when `from` names one) → (name, {file: bytes}, label)."""
    only_members(spec, ("files", "from", "name"))
    files = field(spec, "files", dict, required=True)
    if not files or len(files) > MAX_FILES:
        raise bad_request(f"request body: {where}.files must hold 1 to {MAX_FILES} rule files", "bad-body",
                          "Bad request body")
    base = field(spec, "from", str)
    contents = dict(snapshot.get(base).files) if base is not None else {}
    for name, text in files.items():
        if not _FILE_NAME.fullmatch(name) or not isinstance(text, str):
            raise bad_request(f"request body: {where}.files: {name!r} must be a file name ending in .yaml with its "
                              "text as a string", "bad-body", "Bad request body")
        contents[name] = text.encode("utf-8", "surrogatepass")
    name = field(spec, "name", str) or base or "posted"
    if not _SET_NAME.fullmatch(name):
        raise bad_request(f"request body: {where}.name must be lower-case letters, digits and hyphens", "bad-body",
                          "Bad request body")
    return name, contents


def check_spec(spec, snapshot, where: str):
    """(shown path, rule set or None, problems) of a served name or posted files."""
    if isinstance(spec, str):
        loaded = snapshot.get(spec)
        return loaded.rules.path, loaded.rules, []
    if not isinstance(spec, dict):
        raise bad_request(f"request body: {where} must be a served rule set's name or an object with files",
                          "bad-body", "Bad request body")
    name, contents = _posted(spec, snapshot, where)
    rules, problems = check_files(contents, name=name, shown=name)
    return name, rules, problems


def load_spec(spec, snapshot, where: str):
    shown, rules, problems = check_spec(spec, snapshot, where)
    if rules is None:
        errors = [p for p in problems if p.severity == "error"]
        raise RuleSetInvalid(errors, f"rule set {shown} is invalid: {len(errors):,} problem{'' if len(errors) == 1 else 's'}")
    return rules


async def rule_sets(request: Request, server: Server) -> Response:
    snapshot = await rules_now(server)
    out = {"default": snapshot.default, "reloads": snapshot.version, "rule_sets": [
        {"name": name, "path": s.rules.path, "fingerprint": s.rules.fingerprint, "files": sorted(s.files),
         "current": not s.pending_problems,
         "pending_problems": [p.to_dict() for p in s.pending_problems]} for name, s in sorted(snapshot.sets.items())]}
    return json_body(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


async def rate_card(request: Request, server: Server) -> Response:
    from ...render import rate_card_document, render_rate_card

    loaded = (await rules_now(server)).get(request.path_params["name"])
    q = request.query_params
    accept = request.headers.get("accept", "")
    default = "json" if "application/json" in accept else "html"
    fmt = choice(q.get("format"), "format", ("html", "markdown", "json"), default)
    period = q.get("period")
    if fmt == "json":
        doc = rate_card_document(loaded.rules, period)
        return json_body(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", fingerprint=doc["rules"]["fingerprint"])
    text = render_rate_card(loaded.rules, fmt, period)
    return text_body(text, "text/html" if fmt == "html" else "text/markdown", fingerprint=loaded.rules.fingerprint)


def _validate(specs, snapshot, with_lint: bool) -> dict:
    from ...lint import lint_report

    results = []
    acknowledged: dict[str, int] = {}
    for i, spec in enumerate(specs):
        shown, rules, problems = check_spec(spec, snapshot, f"rule_sets[{i}]")
        if with_lint and rules is not None:
            report = lint_report(rules)
            problems = problems + report.warnings
            acknowledged[shown] = len(report.acknowledged)
        results.append((shown, rules, problems))
    problems = [p for _, _, found in results for p in found]
    errors = sum(p.severity == "error" for p in problems)
    out: dict[str, object] = {"valid": not errors}  # as `ratecard validate --format json` (and lint) print it
    if with_lint:
        out["warnings"] = len(problems) - errors
        out["acknowledged"] = sum(acknowledged.values())
    out["checked"] = "named"
    out["rule_sets"] = [{"path": shown, "valid": rs is not None, "fingerprint": rs.fingerprint if rs else None}
                        | ({"acknowledged": acknowledged.get(shown, 0)} if with_lint else {})
                        for shown, rs, _ in results]
    out["problems"] = [p.to_dict() for p in problems]
    return out


async def validate(request: Request, server: Server) -> Response:
    """Validation is the answer, valid or not (200); a malformed request is the only refusal."""
    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("rule_sets", "lint"))
    specs = field(body, "rule_sets", list, required=True)
    if not specs or len(specs) > 16:
        raise bad_request("request body: rule_sets must name 1 to 16 rule sets", "bad-body", "Bad request body")
    snapshot = await rules_now(server)
    out = await run_in_threadpool(_validate, specs, snapshot, field(body, "lint", bool, default=False))
    return json_body(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


def _diff(server: Server, snapshot, base_spec, new_spec, usage: bytes | None, period, alert_pct, fmt,
          keep_going: bool = False) -> tuple[str, int]:
    from ...diff import diff_rules
    from ...usage import UsageReader

    rules = load_spec(new_spec, snapshot, "rules")
    base = load_spec(base_spec, snapshot, "base")
    rejected: list = []
    reader = UsageReader(rules, period=period, on_reject=rejected.append if keep_going else None)
    if usage is not None:
        reader.read("-", stdin=io.BytesIO(usage), name=f"{BODY_NAME} usage")
    else:
        if not server.usage:
            raise bad_request("no usage: post it as `usage` (the text of a usage file), or start the server with "
                              "--usage FILE", "no-usage", "No usage to compare on")
        for path in server.usage:
            reader.read(path)
    reader.reconciliation.check()
    if not keep_going:
        reader.raise_for_rejects()
    result = diff_rules(base, rules, reader.accounts(), alert_pct=alert_pct)
    if fmt == "html":
        from ...impact import impact_report, render_impact

        return render_impact(impact_report(result, base, rules, period=period)), len(rejected)
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", len(rejected)


def _alert(value):
    from decimal import Decimal, InvalidOperation

    if value is None:
        return None
    try:
        pct = Decimal(str(value))
    except InvalidOperation:
        pct = None
    if pct is None or not pct.is_finite() or pct < 0:
        raise bad_request(f"alert_pct must be a percentage of at least 0, got {value!r}", "bad-body", "Bad request body")
    return pct


def _diff_response(done: tuple[str, int], fmt: str) -> Response:
    """The diff with the rules' fingerprint and, when bad rows were skipped, how many."""
    text, rejected = done
    fingerprint = _fingerprint_of(text, fmt)
    response = text_body(text, "text/html", fingerprint=fingerprint) if fmt == "html" else \
        json_body(text, fingerprint=fingerprint)
    response.headers[REJECTED_HEADER] = str(rejected)
    return response


def _rejects(value) -> bool:
    return choice(value, "rejects", ("refuse", "report"), "refuse") == "report"


async def diff_post(request: Request, server: Server) -> Response:
    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("base", "rules", "usage", "period", "alert_pct", "format", "rejects"))
    snapshot = await rules_now(server)
    fmt = choice(field(body, "format", str), "format", ("json", "html"), "json")
    usage = field(body, "usage", str)
    text = await run_in_threadpool(
        _diff, server, snapshot, field(body, "base", (str, dict), required=True),
        field(body, "rules", (str, dict), default=snapshot.default),
        usage.encode("utf-8", "surrogatepass") if usage is not None else None,
        field(body, "period", str), _alert(field(body, "alert_pct", (str, int))), fmt,
        _rejects(field(body, "rejects", str)))
    return _diff_response(text, fmt)


async def diff_get(request: Request, server: Server) -> Response:
    """The analyst's page (or the diff JSON) of two served rule sets on the server's --usage files."""
    q = request.query_params
    snapshot = await rules_now(server)
    base = q.get("base")
    if not base:
        raise bad_request("base is required: the served rule set to compare against", "bad-parameter", "Bad parameter")
    fmt = choice(q.get("format"), "format", ("json", "html"), "html")
    done = await run_in_threadpool(_diff, server, snapshot, base, q.get("rules") or snapshot.default, None,
                                   q.get("period"), _alert(q.get("alert_pct")), fmt, _rejects(q.get("rejects")))
    return _diff_response(done, fmt)


def _fingerprint_of(text: str, fmt: str) -> str | None:
    if fmt == "json":
        return json.loads(text)["rules"]["fingerprint"]
    found = re.search(r"Generated by ratecard from rules (sha256:[0-9a-f]{64})", text)
    return found.group(1) if found else None


_SPEC = {"oneOf": [{"type": "string", "description": "a served rule set's name"},
                   {"type": "object", "required": ["files"], "additionalProperties": False, "properties": {
                       "files": {"type": "object", "additionalProperties": {"type": "string"},
                                 "description": "file name (*.yaml) → its text; each file is validated with the "
                                                "schema its `kind` names (components: Pricing, ApiMapping, Settlement)"},
                       "from": {"type": "string", "description": "a served rule set the files are laid over"},
                       "name": {"type": "string"}}}]}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

ENDPOINTS = [
    Endpoint("/v1/rule-sets", "GET", READ, rule_sets, "The rule sets served, their fingerprints and reload state", {
        "responses": {"200": {"description": "served rule sets", "content": {"application/json": {}}}}}),
    Endpoint("/v1/rule-sets/{name}/ratecard", "GET", READ, rate_card, "The public rate card (HTML, Markdown or JSON)", {
        "parameters": [_NAME, {"name": "format", "in": "query", "schema": {"enum": ["html", "markdown", "json"]}},
                       {"name": "period", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the rate card", "content": {
            "text/html": {"schema": {"type": "string"}}, "text/markdown": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}}}}}}, page=True),
    Endpoint("/v1/validate", "POST", READ, validate, "Validate (and lint) served or posted rule sets", {
        "description": "The same document as `ratecard validate --format json` (`lint: true`: as `ratecard lint`).",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["rule_sets"], "additionalProperties": False,
            "properties": {"rule_sets": {"type": "array", "items": _SPEC, "minItems": 1, "maxItems": 16},
                           "lint": {"type": "boolean"}}}}}},
        "responses": {"200": {"description": "every problem found, located", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Validation"}}}}}}),
    Endpoint("/v1/diff", "POST", READ, diff_post, "What a rule change does to the bills of some usage", {
        "description": "JSON as `ratecard diff --format json`, or the analyst's page (`format: html`) as "
                       "`ratecard diff --format html` writes it.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["base"], "additionalProperties": False, "properties": {
                "base": _SPEC, "rules": _SPEC, "usage": {"type": "string", "description": "a usage file's text "
                                                         "(default: the server's --usage files)"},
                "period": {"type": "string"}, "alert_pct": {"type": ["string", "integer"]},
                "format": {"enum": ["json", "html"]},
                "rejects": {"enum": ["refuse", "report"], "description": "refuse (default): a bad usage row "
                            "compares nothing; report: skip bad rows, counted in the Ratecard-Rejected-Rows header"}}}}}},
        "responses": {"200": {"description": "the impact", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Diff"}},
            "text/html": {"schema": {"type": "string"}}}}}}),
    Endpoint("/v1/diff", "GET", READ, diff_get, "The analyst's page for two served rule sets on the server's usage", {
        "parameters": [{"name": "base", "in": "query", "required": True, "schema": {"type": "string"}},
                       {"name": "rules", "in": "query", "schema": {"type": "string"}},
                       {"name": "period", "in": "query", "schema": {"type": "string"}},
                       {"name": "alert_pct", "in": "query", "schema": {"type": "string"}},
                       {"name": "format", "in": "query", "schema": {"enum": ["html", "json"]}},
                       {"name": "rejects", "in": "query", "schema": {"enum": ["refuse", "report"]}}],
        "responses": {"200": {"description": "the impact", "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/Diff"}}}}}}, page=True),
]
