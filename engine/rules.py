"""Load a rule set folder: YAML → schema check → semantic checks → immutable RuleSet.

Every problem of every file is collected before anything is reported, so an analyst sees them all
in one run. Problems point at the offending key or value (FILE:LINE:COL).
"""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import currencies, rules_models, rules_tax, rules_terms, schemas, yamlsource
from .displaytext import unsafe_character
from .formatting import counted
from .errors import Location, Problem, RuleSetInvalid
from .fingerprints import canonical, fingerprint
from .model import (ApiMapping, ApiRule, PriceBook, Rounding, RuleSet,
                    InvoiceNumbering, Party, Seller, SettlementPolicy, Tier, frozen_mapping, version_at)
from .periods import next_month
from .yamlsource import Document

RULE_SUFFIXES = (".yaml", ".yml")
_KIND_LABEL = {"pricing": "price book", "api-mapping": "API mapping", "settlement": "settlement policy",
               "seller": "seller file", "account-terms": "account terms", "tax": "tax rules"}


def display_path(path: Path) -> str:
    """Paths as the user would type them: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_rules(path, *, shown_as: str | None = None) -> RuleSet:
    """Load and validate a rule set folder. Raises RuleSetInvalid listing every problem."""
    rule_set, problems = check_rules(path, shown_as=shown_as)
    errors = [p for p in problems if p.severity == "error"]
    if errors or rule_set is None:
        shown = shown_as or display_path(Path(path))
        raise RuleSetInvalid(errors, f"rule set {shown} is invalid: {counted(len(errors), 'problem')}")
    return rule_set


def check_rules(path, *, shown_as: str | None = None) -> tuple[RuleSet | None, list[Problem]]:
    """Validate a rule set folder. Returns the rule set (None when it has errors) and all problems.

    `shown_as` names the folder in problems instead of its path, for a copy of a folder made
    elsewhere (such as the rules of a git revision, exported to a temporary folder).
    """
    root = Path(path)
    shown = shown_as or display_path(root)
    if not root.exists():
        return None, [Problem(Location(shown), "no such rule set folder; expected a folder of YAML rule files")]
    if not root.is_dir():
        return None, [Problem(Location(shown), "not a folder; expected a folder of YAML rule files")]
    try:
        entries = sorted(p for p in root.iterdir() if p.suffix in RULE_SUFFIXES)
    except OSError as exc:
        return None, [Problem(Location(shown), f"cannot read the folder: {exc.strerror or exc}")]
    contents: dict[str, bytes | Problem] = {}
    for file in entries:
        # A name that says "rule file" but is not one is reported: skipping it would bill without
        # rules the analyst believes are in force.
        unusable = _not_a_rule_file(file)
        if unusable:
            label = f"{shown}/{file.name}" if shown_as else str(Path(display_path(root)) / file.name)
            contents[label] = Problem(Location(label), unusable, code="not-a-file")
            continue
        label = f"{shown}/{file.name}" if shown_as else display_path(file)
        try:
            contents[label] = file.read_bytes()
        except OSError as exc:
            contents[label] = Problem(Location(label), f"cannot read the file: {exc.strerror or exc}")
    return check_rule_files(contents, name=root.resolve().name, shown=shown)


def check_rule_files(files, *, name: str, shown: str) -> tuple[RuleSet | None, list[Problem]]:
    """Validate a rule set given as its files' contents: file name as shown in problems → bytes
    (or text). For rule files that are not in a folder, such as those posted to `ratecard serve`;
    `name` is the rule set's name (a folder's name), `shown` what problems about the whole set name.
    """
    if not files:
        return None, [Problem(Location(shown), "no rule files (*.yaml) in this folder")]

    problems: list[Problem] = []
    documents: dict[str, list[Document]] = {kind: [] for kind in schemas.KINDS}
    for label, content in sorted(files.items()):
        doc, found = _read(content, label)
        problems += found
        if doc is None:
            continue
        kind = doc.data.get("kind")
        if not isinstance(kind, str) or kind not in schemas.KINDS:
            problems.append(Problem(doc.source.locate(("kind",)), f"{_unknown_kind(kind)}; expected "
                                    f"`kind:` one of: {', '.join(schemas.KINDS)}", code="kind"))
            continue
        # A value the YAML reader already refused (e.g. a number out of range) is not reported twice.
        refused = {(p.location.line, p.location.column) for p in found}
        problems += [p for p in schemas.check(doc, schemas.KINDS[kind])
                     if (p.location.line, p.location.column) not in refused]
        problems += _unsafe_texts(doc)
        documents[kind].append(doc)
    for kind, docs in documents.items():
        if not docs and kind not in schemas.OPTIONAL_KINDS:
            problems.append(Problem(Location(shown), f"no {_KIND_LABEL[kind]} in this rule set; "
                                    f"expected a file with `kind: {kind}`", code="missing-kind"))

    # Semantic checks run even on documents with schema problems (each check skips what it cannot
    # read), so that the analyst sees every problem in one run.
    builder = _Builder()
    pricing = builder.versions(documents["pricing"], builder.price_book)
    mappings = builder.versions(documents["api-mapping"], builder.api_mapping)
    policies = builder.versions(documents["settlement"], builder.policy)
    sellers = builder.versions(documents["seller"], builder.seller)
    account_terms = builder.versions(documents["account-terms"], builder.account_terms)
    taxes = builder.versions(documents["tax"], lambda doc, start: rules_tax.tax_rules(builder, doc, start))
    builder.first_versions((pricing, mappings, policies))
    builder.cross_check(pricing, mappings)
    builder.check_terms(pricing, account_terms)
    rules_tax.check_categories(builder, pricing, taxes)
    problems = _dedupe(problems + builder.problems)
    if any(p.severity == "error" for p in problems):
        return None, problems
    rule_set = RuleSet(
        name=name,
        path=shown,
        pricing=tuple(p for p, _ in pricing),
        mappings=tuple(m for m, _ in mappings),
        policies=tuple(p for p, _ in policies),
        sellers=tuple(v for v, _ in sellers),
        account_terms=tuple(t for t, _ in account_terms),
        taxes=tuple(t for t, _ in taxes),
        fingerprint=fingerprint([d for docs in documents.values() for d in docs]),
        sources=frozen_mapping((d.file, d.source) for docs in documents.values() for d in docs),
        payloads=frozen_mapping((d.file, canonical(d)) for docs in documents.values() for d in docs),
    )
    return rule_set, problems


def _unsafe_texts(doc: Document) -> list[Problem]:
    """Text in a rule file is printed on invoices and rate cards: no control characters in it."""
    problems = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), doc.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack += [(path + (k,), v) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(path + (i,), v) for i, v in enumerate(value)]
        elif isinstance(value, str):
            bad = unsafe_character(value, multiline=bool(path) and path[-1] == "description")
            if bad:
                problems.append(Problem(doc.source.locate(path), f"the text holds {bad}, which is not allowed "
                                        "in text shown on documents (it could forge or hide part of one); "
                                        "remove it", code="unsafe-text"))
    return problems


def _not_a_rule_file(entry: Path) -> str:
    """Why an entry named like a rule file cannot be read as one ("" when it can)."""
    try:
        if entry.is_file():
            return ""
        if entry.is_symlink() and not entry.exists():
            return (f"a symbolic link to {os.readlink(entry)}, which does not exist; expected a rule file: "
                    "restore its target or remove the link")
        if entry.is_dir():
            return "a folder named like a rule file; expected a YAML file: rename the folder or move it out"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    return "not a regular file; expected a YAML rule file"


def _unknown_kind(kind) -> str:
    if isinstance(kind, str):
        return f"unknown rule file kind {kind!r}"
    return f"the rule file kind must be a name, got {schemas.describe(kind)}"


def _dedupe(problems):
    return sorted(set(problems))


def _read(raw, shown: str) -> tuple[Document | None, list[Problem]]:
    if isinstance(raw, Problem):
        return None, [raw]
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(Location(shown, line, 1), "the file is not UTF-8 text; save it as UTF-8")]
    doc, problems = yamlsource.parse(text, shown)
    if doc is not None and not isinstance(doc.data, dict):
        problems.append(Problem(Location(shown), "expected a mapping of keys (kind, effective_from, ...) "
                                "at the top of the file"))
        return None, problems
    return doc, problems


# What reading a part of a document that failed its schema check can raise.
_UNREADABLE = (KeyError, TypeError, AttributeError, ValueError, ArithmeticError)


def _guarded(fn):
    """Run one semantic check; a part too malformed to check was already reported by the schema."""
    try:
        return fn()
    except _UNREADABLE:
        return None


class _Builder:
    """Turns schema-valid documents into model objects, collecting semantic problems."""

    def __init__(self):
        self.problems: list[Problem] = []

    def problem(self, doc: Document, path, message: str, *, key=False, code="", severity="error"):
        self.problems.append(Problem(doc.source.locate(path, key=key), message, severity, code))

    # -- versions -------------------------------------------------------------------------------

    def versions(self, docs, build):
        built = []
        for doc in docs:
            try:
                start = date.fromisoformat(doc.data["effective_from"])
            except (KeyError, TypeError, ValueError):
                continue  # the schema check has reported it
            built.append((start, doc))
        # Ties keep the files' (sorted) order, so the later file of two is the one reported.
        built.sort(key=lambda pair: pair[0])
        out = []
        for i, (start, doc) in enumerate(built):
            label = _KIND_LABEL[doc.data["kind"]]
            if i:
                before, other = built[i - 1]
                if start == before:
                    self.problem(doc, ("effective_from",),
                                 f"two {label} versions start on {start.isoformat()} "
                                 f"(the other is {other.file}); expected each version to start on its own date",
                                 code="overlapping-versions")
                    continue
                if (start.year, start.month) == (before.year, before.month):
                    # Only one version can price a period: the later one here would be ambiguous.
                    self.problem(doc, ("effective_from",),
                                 f"this {label} version starts on {start.isoformat()}, in the same billing "
                                 f"period ({start:%Y-%m}) as the version in {other.file} (from "
                                 f"{before.isoformat()}), and only one version can price a period; expected a "
                                 f"start on the 1st of a later month, e.g. {next_month(start).isoformat()}",
                                 code="overlapping-versions")
                    continue
                if start.day != 1:
                    self.problem(doc, ("effective_from",),
                                 f"{start.isoformat()} starts in the middle of a billing period; a later version "
                                 f"must start on the 1st of a month, e.g. {start.replace(day=1).isoformat()}",
                                 code="mid-period-version")
            try:
                out.append((build(doc, start), doc))
            except _UNREADABLE:
                pass  # a malformed part the schema check has reported; the rest was still checked
        return out

    def first_versions(self, kinds):
        """Every kind's first version starts in the same period, so no period has only some kinds."""
        firsts = [versions[0] for versions in kinds if versions]
        if len(firsts) < 2:
            return
        earliest, earliest_doc = min(firsts, key=lambda pair: pair[0].effective_from)
        begin = earliest.effective_from
        for model, doc in firsts:
            start = model.effective_from
            if (start.year, start.month) != (begin.year, begin.month):
                label = _KIND_LABEL[doc.data["kind"]]
                until = date.fromordinal(start.replace(day=1).toordinal() - 1)
                gap = f"{begin:%Y-%m}" if (until.year, until.month) == (begin.year, begin.month) else \
                    f"{begin:%Y-%m} to {until:%Y-%m}"
                self.problem(doc, ("effective_from",),
                             f"the first {label} starts on {start.isoformat()}, but the rule set starts in "
                             f"{begin:%Y-%m} ({_KIND_LABEL[earliest_doc.data['kind']]} {earliest_doc.file} from "
                             f"{begin.isoformat()}), so no {label} would be in force for {gap}; expected the "
                             f"first version of every kind to start in the same billing period",
                             code="first-versions-apart")

    # -- pricing --------------------------------------------------------------------------------

    def price_book(self, doc: Document, start: date) -> PriceBook:
        data = doc.data
        currency = data.get("currency")
        book_mode = data.get("tier_mode", "volume")
        free = data.get("free_quota") if isinstance(data.get("free_quota"), dict) else {}
        packs_terms = data.get("resource_packs") if isinstance(data.get("resource_packs"), dict) else None
        categories = []
        raw_categories = data.get("categories")
        for cid, cat in (raw_categories.items() if isinstance(raw_categories, dict) else ()):
            category = _guarded(lambda: rules_models.category(self, doc, cid, cat, book_mode, free, packs_terms))
            if category is not None:
                categories.append((cid, category))
        written = raw_categories if isinstance(raw_categories, dict) else {}
        terms = rules_terms.terms(self, doc, data, (), written)
        return PriceBook(
            effective_from=start, currency=currency, unit=data.get("unit", "call"), tier_mode=book_mode,
            categories=frozen_mapping(categories), terms=terms,
            free_quota_while_suspended=bool(free.get("while_suspended", False)),
            pack_validity_months=_guarded(lambda: int(packs_terms["valid_for_months"])) if packs_terms else None,
            source=doc.file,
        )

    def account_terms(self, doc: Document, start: date):
        return rules_terms.account_terms(self, doc, start)

    def check_terms(self, pricing, account_terms):
        rules_terms.check_categories(self, pricing, account_terms)

    # -- API mapping ----------------------------------------------------------------------------

    def api_mapping(self, doc: Document, start: date) -> ApiMapping:
        data = doc.data
        apis: dict[str, ApiRule] = {}
        where: dict[str, tuple] = {}
        raw_categories = data.get("categories")
        for cid, lists in (raw_categories.items() if isinstance(raw_categories, dict) else ()):
            for billable, key in ((True, "billable"), (False, "free")):
                names = lists.get(key) if isinstance(lists, dict) else None
                for i, api in enumerate(names if isinstance(names, list) else ()):
                    if not isinstance(api, str):
                        continue
                    path = ("categories", cid, key, i)
                    if api in apis:
                        first = doc.source.locate(where[api])
                        self.problem(doc, path, f"API {api} is mapped twice (first at line {first.line}, as "
                                     f"{'billable' if apis[api].billable else 'free'} in {apis[api].category}); "
                                     "expected each API in exactly one category", code="api-mapped-twice")
                        continue
                    apis[api] = ApiRule(api, cid, billable)
                    where[api] = path
        outcomes = data.get("billable_outcomes") if isinstance(data.get("billable_outcomes"), dict) else {}
        return ApiMapping(
            effective_from=start, api_version=str(data.get("api_version", "")),
            success_billable=outcomes.get("success") is True,
            billable_error_codes=frozenset(c for c in outcomes.get("error_codes", ()) if isinstance(c, str)),
            unknown_outcome=data.get("unknown_outcome", "billable"),
            unknown_api=data.get("unknown_api", "error"),
            apis=frozen_mapping(apis), source=doc.file,
        )

    # -- settlement -----------------------------------------------------------------------------

    def policy(self, doc: Document, start: date) -> SettlementPolicy:
        data = doc.data
        zone = data.get("time_zone")
        # The schema lists the zone names; this catches one this machine's time zone data lacks.
        if isinstance(zone, str) and zone in schemas.enum_of("settlement", "time_zone"):
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                self.problem(doc, ("time_zone",), f"{zone!r} is missing from this machine's time zone data; "
                             "install the tzdata package", code="time-zone")
        _guarded(lambda: self._check_days(doc, data))
        freeze = data.get("deposit_freeze")
        resume = _guarded(lambda: data["arrears"]["resume_when"])
        if resume == "freeze-succeeds" and freeze is None:
            self.problem(doc, ("arrears", "resume_when"), "resume_when is freeze-succeeds but the policy has no "
                         "`deposit_freeze`; add one or resume on balance-not-negative", code="freeze")
        locale = data.get("locale", "en")
        if isinstance(locale, str) and not currencies.is_locale(locale):
            self.problem(doc, ("locale",), f"{locale!r} is not a locale with CLDR data; expected an identifier "
                         "such as en, en_GB, de_DE or zh_Hans_CN", code="locale")
        window = data["deduction_window"]
        return SettlementPolicy(
            effective_from=start, billing_cycle=data["billing_cycle"], time_zone=zone,
            bill_issue_day=int(data["bill_issue_day"]),
            deduction_first_day=int(window["first_day"]), deduction_last_day=int(window["last_day"]),
            rounding=Rounding(rules_models.number(data["rounding"]["quantum"]), data["rounding"]["mode"],
                              data["rounding"]["apply"]),
            arrears_action=data["arrears"]["action"], resume_when=resume,
            deposit_freeze_percent=rules_models.number(freeze["percent"]) if freeze else None, source=doc.file,
            locale=locale if isinstance(locale, str) else "en",
            numbering=self._numbering(doc, data.get("invoice_numbering")),
        )

    def seller(self, doc: Document, start: date) -> Seller:
        data = doc.data
        party = Party(str(data["legal_name"]), tuple(str(line) for line in data["address"]), str(data["country"]),
                      str(data["tax_id"]), str(data.get("payment_instructions", "")))
        return Seller(start, party, str(data.get("paper", "A4")), doc.file)

    def _numbering(self, doc, raw) -> InvoiceNumbering:
        if not isinstance(raw, dict):
            return InvoiceNumbering()
        numbering = InvoiceNumbering(str(raw.get("invoice_prefix", "INV-")), str(raw.get("credit_note_prefix", "CN-")),
                                     str(raw.get("sequence", "continuous")), int(raw.get("digits", 6)))
        if numbering.invoice_prefix == numbering.credit_note_prefix:
            self.problem(doc, ("invoice_numbering", "credit_note_prefix"), f"credit notes would be numbered in "
                         f"the invoices' series ({numbering.invoice_prefix!r}); expected a prefix of their own, "
                         f"e.g. {numbering.invoice_prefix.rstrip('-') + 'C-'!r}", code="numbering")
        return numbering

    def _check_days(self, doc, data):
        window = data["deduction_window"]
        first, last, issue = window["first_day"], window["last_day"], data["bill_issue_day"]
        if last < first:
            self.problem(doc, ("deduction_window", "last_day"), f"the deduction window ends (day {last}) before "
                         f"it starts (day {first}); expected last_day ≥ first_day", code="deduction-window")
        if first < issue:
            self.problem(doc, ("deduction_window", "first_day"), f"fees would be deducted (from day {first}) "
                         f"before the bill is issued (day {issue}); expected first_day ≥ bill_issue_day",
                         code="deduction-window")

    # -- across files ---------------------------------------------------------------------------

    def cross_check(self, pricing, mappings):
        """Each mapping against the price book in force alongside it (and vice versa), period by
        period, choosing versions exactly as rating does (`model.version_at`)."""
        starts = sorted({v.effective_from.replace(day=1) for v, _ in pricing + mappings})
        reported = set()
        for start in starts:
            book, book_doc = _at(pricing, start)
            mapping, map_doc = _at(mappings, start)
            if book is None or mapping is None:
                continue
            # The ids written in the book, not only those built: a category left out of the model for
            # a schema problem (already reported) must not also be reported as missing.
            written = book_doc.data.get("categories")
            priced = written if isinstance(written, dict) else book.categories
            written_map = map_doc.data.get("categories")
            for cid in written_map if isinstance(written_map, dict) else ():
                if cid not in priced and (map_doc.file, cid) not in reported:
                    reported.add((map_doc.file, cid))
                    self.problem(map_doc, ("categories", cid), f"category {cid!r} is not in the price book "
                                 f"({book.source}); expected one of: {', '.join(book.categories)}",
                                 key=True, code="unknown-category")
            reached = {rule.category for rule in mapping.apis.values() if rule.billable}
            for cid in book.categories:
                if cid not in reached and (book_doc.file, cid) not in reported:
                    reported.add((book_doc.file, cid))
                    self.problem(book_doc, ("categories", cid), f"no billable API counts in category {cid!r}, "
                                 f"so its prices can never apply; expected at least one API under "
                                 f"`categories.{cid}.billable` in {mapping.source}",
                                 key=True, code="unreachable-category")


def _at(versions, start):
    return version_at(versions, start, lambda pair: pair[0].effective_from) or (None, None)
