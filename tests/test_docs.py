"""The analysts' reference and editor help cannot drift from the schemas."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT
from ratecard import schemadoc, schemas

SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))
RULE_FILES = sorted((ROOT / "rules").glob("*/*.y*ml"))


def test_docs_rules_md_is_up_to_date():
    assert schemadoc.main(["--check"]) == 0, "docs/rules.md is stale: run `python -m ratecard.schemadoc > docs/rules.md`"


def test_check_fails_when_stale(tmp_path, capsys):
    stale = tmp_path / "rules.md"
    stale.write_text(schemadoc.generate().replace("exact decimal number", "float"), encoding="utf-8")
    assert schemadoc.main(["--check", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert schemadoc.main(["--check", str(tmp_path / "missing.md")]) == 1


def test_every_field_of_every_kind_is_documented():
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for kind, filename in schemas.KINDS.items():
        root = schemadoc.load(filename)
        for path, node, _, (_, example) in schemadoc.fields(root, root):
            assert f"### `{path}` — {node['title']}" in text, path
            assert example is not None, f"{filename}: {path} has no example to show"


def _properties(node, where=""):
    """(where, name, schema) of every entry of every `properties`, anywhere in a schema."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield where, name, sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{i}")


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda p: p.name)
def test_every_schema_property_has_title_and_description(schema):
    document = json.loads(schema.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document.get("$id")
    found = list(_properties(document))
    assert found
    for where, name, sub in found:
        assert sub.get("title") and sub.get("description"), f"{schema.name}{where}: property {name!r}"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_file_names_its_schema_on_the_first_line(rule_file):
    first = rule_file.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, f"{rule_file}: first line is {first!r}"
    target = (rule_file.parent / match.group(1)).resolve()
    assert target.is_file(), f"{rule_file}: {match.group(1)} does not exist"
    kind = re.search(r"^kind: (\S+)$", rule_file.read_text(encoding="utf-8"), re.M).group(1)
    assert target.name == schemas.KINDS[kind], f"{rule_file}: kind {kind} but schema {target.name}"


def test_there_are_rule_files_and_schemas_to_check():
    assert set(schemas.KINDS.values()) <= {p.name for p in SCHEMAS}
    assert len(RULE_FILES) >= len(schemas.KINDS)
