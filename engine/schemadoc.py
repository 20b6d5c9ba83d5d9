"""Generate the analysts' reference, docs/rules.md, from the JSON Schemas.

    python -m ratecard.schemadoc > docs/rules.md     # regenerate
    python -m ratecard.schemadoc --check             # exit 1 when docs/rules.md is stale

Every field's meaning, type, allowed values and example come from the schemas (`title`,
`description`, `type`, `enum`, `examples`, ...), which are also what editors show while an analyst
types, so the reference cannot drift from them. Only the introduction below is written by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from . import resources, schemas, yamlsource

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
COMMAND = "python -m ratecard.schemadoc > docs/rules.md"

INTRO = f"""\
# Rule files reference

<!-- Generated from schemas/*.json by `{COMMAND}`. Do not edit by hand:
     change the schemas (or the introduction in engine/schemadoc.py) and regenerate.
     tests/test_docs.py fails when this file is stale. -->

A **rule set** is one folder of YAML rule files (for example `rules/face-recognition/`). Each file
says what it is with `kind:`, and a rule set needs at least one file of each kind: a price book
(`kind: pricing`), an API mapping (`kind: api-mapping`) and a settlement policy (`kind: settlement`).
A kind may have several files, one per version: `effective_from` says when each comes into force, and
every version after the first must start on the 1st of a month (the start of a billing period).

Start each file with the line that names its schema, so that VS Code (YAML extension) and IntelliJ
complete and check it while you type:

```yaml
# yaml-language-server: $schema=../../schemas/pricing.schema.json
```

Check every rule set under `./rules` with `ratecard validate` (or name folders with `--rules`; the
staged content with `--staged`, as the pre-commit hooks do) and look for legal but suspicious rules
(such as volume price cliffs) with `ratecard lint`. `ratecard init` scaffolds a rules repository
with a copy of these schemas, the hooks and editor settings.

## How values are read

Rule files are read as YAML 1.2 reads them (its core schema), which is also how editors read them
(the YAML extension of VS Code, yaml-language-server): the value the editor checks while you type is
the value `ratecard validate` checks. No value is silently read as something you did not mean:

- `true` and `false` are booleans. `yes`, `no`, `on` and `off` stay text, so where a boolean is
  expected they are reported instead of `no` silently becoming false.
- `1000000` is a whole number; so is `0250` (two hundred and fifty: leading zeros do not make an octal
  number in YAML 1.2); `0o17` and `0x1F` are octal and hexadecimal.
- `1_000_000` and `3,000,000` are text, in YAML 1.2 as in the editor: where a number is expected
  they are reported, with the hint to write `1000000`.
- `0.0025`, `1.5e-4` and `1e6` are exact decimal numbers, built from the digits as written (never
  a binary float); `1e6` is the number 1000000. `.inf` and `.nan` are reported.
- A price written in quotes (`"0.0025"`) is text, and is reported rather than guessed.
- Dates such as `2020-09-15` stay text; the schema checks their form.
- A key written twice in the same mapping is an error pointing at the second one (plain YAML
  would silently keep the last).

## What the schemas check, and what only `ratecard validate` can

Every rule about a single value that JSON Schema can say is in the schemas, so the editor flags it
while you type: types, required and unknown keys, ids (`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`) and API
names, ISO 4217 currencies, IANA time zones, the allowed rounding quanta, days of the month, and an
API listed twice in one list. `ratecard validate` checks all of that with the same schemas, and
also what needs more than one value or more than one file, which only it can see:

- tier bounds strictly ascending, and the last tier unbounded;
- an API mapped in two categories (or as billable and free);
- every category of an API mapping priced by the price book in force beside it, and every priced
  category reached by a billable API;
- versions of a kind starting in different billing periods, later versions on the 1st of a month,
  and the first version of every kind in the same period;
- the deduction window after the bill issue day and not reversed; `resume_when: freeze-succeeds`
  only with a `deposit_freeze`; packs on sale only with `resource_packs` terms, each size once;
- a duplicate key, `.inf`/`.nan`, and numbers of more than 30 digits (the editor's YAML reading
  keeps the last duplicate and accepts the others);
- a time zone missing from the machine's time zone data.

## Problems

Every problem is reported as `FILE:LINE:COL: severity: path: message`, pointing at the offending
key or value, for example:

```text
rules/my-product/pricing.yaml:14:39: error: categories.image-tagging.tiers[0].unit_price: expected a number, got the text '0.0025'; write it without quotes so it is read as an exact number
```

`path` is where the value sits in the document (`tiers[0]` is the first tier). All problems of all
files are reported in one run; `--format json` gives them as data (file, line, column, path,
message, severity). Errors make `ratecard validate` exit with status 1; warnings from
`ratecard lint` do not, unless `--strict` is given.

## Acknowledging a lint finding

Some findings are intended: a volume price book *means* its price cliffs. Say so in the rule file,
with a comment on the line the warning points at (`LINE` of `FILE:LINE:COL`), naming the warning's
code and saying why:

```yaml
tiers:
  - {{ up_to: 5000, unit_price: 0.02 }}  # lint: allow price-cliff -- intended volume discount
```

The form is `# lint: allow CODE[, CODE...] -- REASON` (`—` or `:` may stand for `--`). An
acknowledged finding is no longer reported, so `ratecard lint --strict` passes; the summary counts
it (`0 warnings (14 acknowledged)`). The comment is checked in turn, as a warning: a code lint does
not have (`unknown-lint-code`), no reason (`acknowledgement-without-reason`), and no finding of that
code left on that line (`unused-acknowledgement`: the rule changed, so remove the comment or look
again). Codes: `price-cliff`, `dearer-higher-tier`, `same-price-tier`, `free-category`,
`nothing-billed`, `dropped-api`. A comment changes no bill and no rule set fingerprint.
"""

_TYPE_WORDS = {
    "string": "text", "integer": "whole number", "number": "exact decimal number",
    "boolean": "`true` or `false`", "object": "mapping", "array": "list",
}


def load(filename: str) -> dict:
    # Decimal keeps example prices exactly as written in the schema (0.0025, not 2.5e-03).
    with open(resources.schemas_dir() / filename, encoding="utf-8") as fh:
        return json.load(fh, parse_float=Decimal)


def resolve(node: dict, root: dict) -> dict:
    """A local `$ref` merged with the referring node's own keywords (title, description, examples)."""
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def placeholder(key: str) -> str:
    """`categories` → `<category id>`: how a field path names the keys the analyst chooses."""
    word = key[:-3] + "y" if key.endswith("ies") else key.removesuffix("s")
    return f"<{word.replace('_', ' ')} id>"


def fields(node: dict, root: dict, path: str = "", example=None):
    """(path, resolved schema, required, (key, example)) of every field under `node`, in schema
    order. `required` is False, True (at the top), the parent's path (required inside it), or None
    for an entry of a mapping or an item of a list, of which there are as many as the analyst writes.

    A field without its own example borrows one from its parent's example (an entry of a mapping,
    an item of a list), so that every field can be shown with a value."""
    node = resolve(node, root)
    required = set(node.get("required", ()))
    for key, sub in node.get("properties", {}).items():
        sub = resolve(sub, root)
        own = _example(sub)
        if own is None and isinstance(example, dict):
            own = example.get(key)
        child = f"{path}.{key}" if path else key
        yield child, sub, (key in required) and (path or True), (key, own)
        yield from fields(sub, root, child, own)
        yield from _children(sub, root, child, key, own)


def _children(node: dict, root: dict, path: str, key: str, example):
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        entry = resolve(extra, root)
        name = placeholder(key)
        own = _example(entry)
        label = name
        if own is None and isinstance(example, dict) and example:
            label, own = next(iter(example.items()))
        if own is None:
            own = _synthesize(entry, root)
        yield f"{path}.{name}", entry, None, (label, own)
        yield from fields(entry, root, f"{path}.{name}", own)
    items = node.get("items")
    if isinstance(items, dict):
        item = resolve(items, root)
        if item.get("properties"):
            own = _example(item)
            if own is None and isinstance(example, list) and example:
                own = example[0]
            if own is None:
                own = _synthesize(item, root)
            yield f"{path}[]", item, None, (None, own)
            yield from fields(item, root, f"{path}[]", own)


def _example(node: dict):
    examples = node.get("examples")
    return examples[0] if examples else None


def _synthesize(node: dict, root: dict):
    """An example mapping built from the examples of its fields."""
    out = {}
    for key, sub in node.get("properties", {}).items():
        value = _example(resolve(sub, root))
        if value is not None:
            out[key] = value
    return out or None


def type_text(node: dict, root: dict) -> str:
    if "const" in node:
        return f"always `{node['const']}`"
    if "enum" in node:
        values = node["enum"]
        if len(values) > 12:  # currencies, time zones: the schema lists them, the reference samples them
            shown = ", ".join(f"`{v}`" for v in node.get("examples", values[:3]))
            return f"one of the {len(values)} values the schema lists, e.g. {shown}"
        return "one of " + ", ".join(f"`{_plain(v)}`" for v in values)
    kind = node.get("type", "")
    text = _TYPE_WORDS.get(kind, kind or "any value")
    if node.get("format") == "date":
        text = "date written YYYY-MM-DD"
    elif "pattern" in node:
        text += f" matching `{node['pattern']}`"
    if kind == "array" and isinstance(node.get("items"), dict):
        item = resolve(node["items"], root)
        text += " of " + (_lower_first(item.get("title", "mapping")) + "s" if item.get("properties")
                          else type_text(item, root))
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        entry = resolve(node["additionalProperties"], root)
        text += f" of ids to {_lower_first(entry.get('title', 'values'))}"
        names = node.get("propertyNames", {}).get("pattern")
        if names:
            text += f" (ids matching `{names}`)"
    return text


def _plain(value) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _lower_first(title: str) -> str:
    return title[:1].lower() + title[1:]


def limits(node: dict) -> list[str]:
    out = []
    words = {"minimum": "at least", "exclusiveMinimum": "greater than", "maximum": "at most",
             "exclusiveMaximum": "less than"}
    for keyword, word in words.items():
        if keyword in node:
            out.append(f"{word} {node[keyword]}")
    if node.get("minItems") or node.get("minProperties") or node.get("minLength"):
        out.append("not empty")
    if node.get("uniqueItems"):
        out.append("no item twice")
    if node.get("additionalProperties") is False and node.get("properties"):
        out.append("no other keys")
    return out


class _Dumper(yaml.SafeDumper):
    """Writes examples the way the rule loader reads them: quotes only what would not stay text."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)  # indent list items, as the shipped rule files do


_Dumper.yaml_implicit_resolvers = yamlsource._RuleLoader.yaml_implicit_resolvers
_Dumper.add_representer(Decimal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:float", format(v, "f")))


def snippet(label, value) -> str:
    data = [value] if label is None else {label: value}
    # Flow style only inside (a tier reads best as `{up_to: 1000000, unit_price: 0.0025}`).
    flow = None if isinstance(value, (dict, list)) else False
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=flow, sort_keys=False,
                     allow_unicode=True, width=100).rstrip("\n")


def kind_section(kind: str, filename: str) -> list[str]:
    root = load(filename)
    rows = list(fields(root, root))
    out = [f"## {root['title']} (`kind: {kind}`)", "", root["description"], "",
           f"Schema: `schemas/{filename}`. First line of the file:", "", "```yaml",
           f"# yaml-language-server: $schema=../../schemas/{filename}", "```", "",
           "| Field | Type | Required |", "|---|---|---|"]
    for path, node, required, _ in rows:
        out.append(f"| [`{path}`](#{_anchor(kind, path)}) | {type_text(node, root)} | {_required(required)} |")
    out.append("")
    for path, node, required, (label, example) in rows:
        out += [f'<a id="{_anchor(kind, path)}"></a>', f"### `{path}` — {node.get('title', '')}", "",
                node.get("description", ""), "",
                f"- **Type:** {type_text(node, root)}",
                f"- **Required:** {_required(required)}"]
        if "default" in node:
            out.append(f"- **Default:** `{json.dumps(node['default'], default=str)}`")
        if limits(node):
            out.append(f"- **Allowed values:** {', '.join(limits(node))}")
        if example is not None:
            out += ["- **Example:**", "", "  ```yaml"]
            out += [f"  {line}" for line in snippet(label, example).splitlines()]
            out += ["  ```"]
        out.append("")
    return out


def _required(required) -> str:
    if required is None:
        return "as many as needed"
    if isinstance(required, str):
        return f"yes, in `{required}`"
    return "yes" if required else "no"


def _anchor(kind: str, path: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in path.lower().replace("[]", "-item"))
    return f"{kind}-{'-'.join(filter(None, slug.split('-')))}"


def generate() -> str:
    from .docs_pricing import TEXT

    lines = [INTRO, TEXT]
    for kind, filename in schemas.KINDS.items():
        lines += kind_section(kind, filename)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ratecard.schemadoc", description=__doc__.splitlines()[0])
    parser.add_argument("--check", nargs="?", const=str(DOC), metavar="FILE",
                        help=f"exit 1 if FILE (default: {DOC.name} in docs/) differs from what would be generated")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        try:
            current = Path(args.check).read_text(encoding="utf-8")
        except OSError as exc:
            print(f"{args.check}: cannot read it ({exc.strerror}); generate it with `{COMMAND}`", file=sys.stderr)
            return 1
        if current != text:
            print(f"{args.check} is stale: regenerate it with `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    # Bytes, so that the file is UTF-8 whatever the terminal's encoding.
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
