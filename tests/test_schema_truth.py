"""One truth for the editor and the engine (issue 16 items 6 and 7): every value rule JSON Schema can
say is in the schemas themselves, so an editor applying them alone (as yaml-language-server does, see
test_editor.py) flags it; and every schema problem is reported at the bad key or value with a hint.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from conftest import ROOT, TOY_APIS, TOY_PRICING, TOY_SETTLEMENT, write_rule_set
from ratecard.rules import check_rules
from ratecard.schemas import KINDS

SCHEMAS = {name: json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
           for name in ("pricing", "api-mapping", "settlement")}


def _nodes(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _editor_errors(kind: str, data: dict) -> list[str]:
    """What a JSON Schema validator that knows nothing of ratecard finds: what an editor can say."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[kind], format_checker=jsonschema.FormatChecker())
    return [e.message for e in validator.iter_errors(data)]


def _toy(kind: str, **changes) -> dict:
    import yaml

    data = yaml.safe_load({"pricing": TOY_PRICING, "api-mapping": TOY_APIS, "settlement": TOY_SETTLEMENT}[kind])
    data["effective_from"] = "2024-01-01"
    data.update(changes)
    return data


@pytest.mark.parametrize("kind", SCHEMAS)
def test_the_schemas_are_valid_draft_2020_12(kind):
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[kind])


@pytest.mark.parametrize("filename", sorted(KINDS.values()))  # every rule file kind, the seller's too
def test_every_pattern_has_a_title_and_a_description_for_its_hint(filename):
    for node in _nodes(json.loads((ROOT / "schemas" / filename).read_text())):
        if "pattern" in node:
            assert node.get("title") and node.get("description"), node


@pytest.mark.parametrize("kind, changes", [
    ("pricing", {"currency": "XYZ"}),
    ("settlement", {"time_zone": "Asia/Shangai"}),
    ("settlement", {"rounding": {"quantum": 0.03, "mode": "half-up", "apply": "per-bill"}}),
    ("api-mapping", {"categories": {"widgets": {"billable": ["RenderWidget", "RenderWidget"]}}}),
    ("api-mapping", {"categories": {"widgets": {"billable": ["Render Widget"]}}}),
    ("pricing", {"categories": {"Face_Search": {"name": "x", "tiers": [{"unit_price": 1}]}}}),
])
def test_value_rules_are_in_the_schema_so_the_editor_flags_them(kind, changes):
    assert _editor_errors(kind, _toy(kind, **changes))


def test_the_schema_lists_the_quanta_the_engine_allows():
    allowed = SCHEMAS["settlement"]["properties"]["rounding"]["properties"]["quantum"]["enum"]
    assert [Decimal(str(q)) for q in allowed] == [Decimal(1).scaleb(-n) for n in range(9)]


def test_every_listed_currency_is_one_the_engine_formats():
    from ratecard import currencies

    listed = SCHEMAS["pricing"]["properties"]["currency"]["enum"]
    assert {"USD", "CNY", "EUR", "JPY"} <= set(listed) and "XYZ" not in listed
    assert all(currencies.is_currency(code) for code in listed)


def test_every_listed_time_zone_loads():
    listed = SCHEMAS["settlement"]["properties"]["time_zone"]["enum"]
    assert {"Asia/Shanghai", "UTC", "Europe/Berlin"} <= set(listed)
    for zone in listed:
        ZoneInfo(zone)


def _problems(tmp_path, **files):
    _, problems = check_rules(write_rule_set(tmp_path / "rs", **files))
    return problems


def test_a_bad_category_id_is_reported_at_that_key_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    problems = _problems(tmp_path, pricing=TOY_PRICING.replace("  gadgets:", "  Gadget_Lookups:"),
                         apis=TOY_APIS.replace("  gadgets:", "  Gadget_Lookups:"))
    found = [p for p in problems if p.code == "schema:pattern"]
    assert [(p.location.file, p.location.line, p.location.column) for p in found] == [
        ("rs/apis.yaml", 13, 3), ("rs/pricing.yaml", 13, 3)]  # the key itself, not the first category
    assert found[1].message == ("'Gadget_Lookups' is not a valid category id: expected lower-case letters and digits "
                                "in words joined by hyphens, e.g. face-search; did you mean 'gadget-lookups'?")


def test_a_bad_api_name_has_a_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [problem] = _problems(tmp_path, apis=TOY_APIS.replace("[LookupGadget]", "[Lookup-Gadget]"))
    assert (problem.location.line, problem.location.column) == (14, 16)
    assert problem.message == ("the text 'Lookup-Gadget' is not a valid API action name: expected an API action name "
                               "as usage records spell it: a letter, then letters, digits, `_` or `.`, e.g. SearchFaces")
    assert "()" not in problem.message


def test_an_api_listed_twice_in_one_list_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    problems = _problems(tmp_path, apis=TOY_APIS.replace("[LookupGadget]", "[LookupGadget, LookupGadget]"))
    assert [p.message for p in problems if p.code == "schema:uniqueItems"] == [
        "lists LookupGadget more than once; expected each item once"]
