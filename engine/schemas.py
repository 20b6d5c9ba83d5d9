"""JSON Schema validation of rule documents, with problems located in the YAML source."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from functools import lru_cache

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from . import resources
from .errors import Problem
from .yamlsource import Document

# Rule file kinds and the schema file each is validated with.
KINDS = {
    "pricing": "pricing.schema.json",
    "api-mapping": "api-mapping.schema.json",
    "settlement": "settlement.schema.json",
    "seller": "seller.schema.json",
    "account-terms": "account-terms.schema.json",
    "tax": "tax.schema.json",
}
# Kinds a rule set may do without.
OPTIONAL_KINDS = frozenset({"seller", "account-terms", "tax"})


def _is_integer(checker, instance) -> bool:
    # Numbers are Decimals in rule data; an integral one written `1e6` is the plainly meant 1000000.
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return True
    return isinstance(instance, Decimal) and instance.is_finite() and instance == instance.to_integral_value()


_TYPES = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
_Validator = jsonschema.validators.extend(Draft202012Validator, type_checker=_TYPES)

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date", raises=ValueError)
def _check_date(value) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


@lru_cache(maxsize=None)
def load_schema(filename: str) -> dict:
    """A schema as JSON data (e.g. to publish it)."""
    with open(resources.schemas_dir() / filename, encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=None)
def _checking_schema(filename: str) -> dict:
    # Decimal, as rule numbers are: an enum of quanta (0.01) must equal the 0.01 an analyst writes.
    with open(resources.schemas_dir() / filename, encoding="utf-8") as fh:
        return json.load(fh, parse_float=Decimal)


def enum_of(kind: str, key: str) -> frozenset:
    """The values a top-level field of a kind's schema allows (e.g. the time zone names)."""
    return frozenset(load_schema(KINDS[kind])["properties"][key].get("enum", ()))


@lru_cache(maxsize=None)
def validator(filename: str):
    return _Validator(_checking_schema(filename), format_checker=_FORMATS)


_TYPE_NAMES = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "object": "a mapping of keys to values", "array": "a list", "null": "nothing (null)",
}


def describe(value) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, Decimal)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _looks_numeric(text: str) -> bool:
    try:
        Decimal(text.replace(",", "").replace("_", ""))
        return True
    except Exception:
        return False


def _type_message(error) -> str:
    wanted = error.validator_value
    wanted = wanted if isinstance(wanted, list) else [wanted]
    names = " or ".join(_TYPE_NAMES.get(w, str(w)) for w in wanted)
    value = error.instance
    msg = f"expected {names}, got {describe(value)}"
    if isinstance(value, str) and {"number", "integer"} & set(wanted) and _looks_numeric(value):
        if "," in value or "_" in value:
            plain = value.replace(",", "").replace("_", "")
            msg += (f"; write the number without separators ({plain}): YAML 1.2, which editors read too, "
                    "takes digits with `,` or `_` as text")
        else:
            msg += "; write it without quotes so it is read as an exact number"
    elif isinstance(value, str) and "boolean" in wanted and value.lower() in {"yes", "no", "on", "off", "y", "n"}:
        msg += "; write true or false (yes/no/on/off are not booleans here)"
    elif isinstance(value, Decimal) and "integer" in wanted:
        msg += "; a count must be a whole number"
    elif isinstance(value, (int, Decimal)) and not isinstance(value, bool) and "string" in wanted:
        msg += "; put it in quotes if it is meant as text"
    return msg


# Past this many allowed values (currencies, time zones) a message suggests the closest instead of all.
_LONG_ENUM = 12


def _id_suggestion(name: str) -> str:
    """`Image_Tagging` → `image-tagging`: the id the analyst most likely meant, if it is one."""
    import re

    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)
    guess = "-".join(w.lower() for w in words)
    return f"; did you mean {guess!r}?" if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", guess) else ""


def _lower(title: str) -> str:
    """`Category id` → `category id`, but `API action name` stays as written."""
    return title[:1].lower() + title[1:] if title[1:2].islower() else title


def _closest(value, options) -> str:
    import difflib

    if not isinstance(value, str):
        return ""
    texts = {o.lower(): o for o in options if isinstance(o, str)}
    close = difflib.get_close_matches(value.lower(), list(texts), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(texts[c] for c in close)}?" if close else ""


def _friendly(error) -> tuple[str, tuple, bool]:
    """Message, data path and whether to point at the key rather than the value."""
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    what = schema.get("title")
    v = error.validator
    if "propertyNames" in error.schema_path:
        # The error is about a key: point at that key, not at the mapping (its first entry).
        label = _lower(what or "key")
        hint = schema.get("description", "").rstrip(".")
        return (f"{error.instance!r} is not a valid {label}: expected {hint[:1].lower() + hint[1:]}"
                f"{_id_suggestion(str(error.instance))}", path + (error.instance,), True)
    if v == "type":
        return _type_message(error), path, False
    if v == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        props = schema.get("properties", {})
        parts = []
        for key in missing:
            sub = props.get(key, {})
            title = f" ({sub['title']})" if "title" in sub else ""
            parts.append(f"`{key}`{title}")
        return f"missing required key {', '.join(parts)}", path, True
    if v == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in schema.get("properties", {})]
        key = extra[0] if extra else ""
        return (f"unknown key {key!r}; expected one of: {', '.join(allowed)}", path + (key,), True)
    if v == "enum":
        allowed = error.validator_value
        if len(allowed) > _LONG_ENUM:
            examples = [str(e) for e in schema.get("examples", ())]
            such = f"; expected e.g. {' or '.join(examples)}" if examples else ""
            return (f"{describe(error.instance)} is not a known {_lower(what or 'value')}"
                    f"{_closest(error.instance, allowed) or such}", path, False)
        options = ", ".join(format(o, "f") if isinstance(o, Decimal) else str(o) for o in allowed)
        return f"{describe(error.instance)} is not allowed; expected one of: {options}", path, False
    if v == "const":
        return f"expected {error.validator_value!r}, got {describe(error.instance)}", path, False
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = {"minimum": "at least", "exclusiveMinimum": "greater than",
                 "maximum": "at most", "exclusiveMaximum": "less than"}[v]
        return f"{describe(error.instance)} is out of range; expected {bound} {error.validator_value}", path, False
    if v == "pattern":
        label = _lower(what or "text")
        hint = schema.get("description", "").rstrip(".") or f"text matching {schema.get('pattern')}"
        return f"{describe(error.instance)} is not a valid {label}: expected {hint[:1].lower() + hint[1:]}", path, False
    if v == "format":
        return f"{describe(error.instance)} is not a valid {error.validator_value} (expected YYYY-MM-DD)", path, False
    if v in ("minItems", "minProperties", "minLength"):
        return "must not be empty", path, False
    if v == "uniqueItems":
        seen, twice = set(), []
        for item in error.instance if isinstance(error.instance, list) else ():
            key = json.dumps(item, sort_keys=True, default=str)
            if key in seen and item not in twice:
                twice.append(item)
            seen.add(key)
        named = ", ".join(str(t) for t in twice)
        return f"lists {named or 'the same item'} more than once; expected each item once", path, False
    return error.message, path, False


def check(document: Document, schema_file: str) -> list[Problem]:
    """Every schema problem of a document, located at the offending key or value."""
    problems = []
    for error in validator(schema_file).iter_errors(document.data):
        for one in _each_key(error):
            message, path, at_key = _friendly(one)
            location = document.source.locate(path, key=at_key)
            problems.append(Problem(location, message, code=f"schema:{error.validator}"))
    return problems


def _each_key(error):
    """One error per unknown key (jsonschema reports them together; each is at its own line)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return [error]
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    extra = [k for k in error.instance if k not in known]
    if len(extra) < 2:
        return [error]
    out = []
    for key in extra:
        copy = jsonschema.exceptions.ValidationError(error.message, validator=error.validator, path=error.relative_path,
                                                     instance={key: error.instance[key]}, schema=error.schema,
                                                     schema_path=error.relative_schema_path, parent=error.parent,
                                                     validator_value=error.validator_value)
        out.append(copy)
    return out
