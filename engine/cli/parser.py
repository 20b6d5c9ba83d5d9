"""The `ratecard` argument parser: every command, option and format, and the function each runs."""

from __future__ import annotations

import argparse

from .. import __version__
from .account import (
    cmd_account_activate,
    cmd_account_create,
    cmd_account_import,
    cmd_account_list,
    cmd_account_show,
    cmd_account_update,
    cmd_pack_buy,
    cmd_pack_list,
    cmd_topup,
)
from .bill import cmd_bill, cmd_ratecard
from .common import amount_arg, batch_arg, choices_help, count_arg, jobs_arg, moment_arg, pct_arg, period_arg, zone_arg
from .diff import cmd_diff
from .documents import FORMATS as DOCUMENT_FORMATS
from .documents import cmd_credit_note, cmd_invoice_show, cmd_void
from .quote import cmd_quote
from .serve import cmd_serve, depth_arg, port_arg, seconds_arg, size_arg, workers_arg
from .settle import cmd_collect, cmd_settle, cmd_status
from .usage import add_usage_command, add_usage_options
from .statement import cmd_ledger_check, cmd_ledger_migrate, cmd_statement
from .init import cmd_init
from ..ledger.prerender import PARALLEL_FROM as PRERENDER_FROM
from ..ledger.settle import BATCH as SETTLE_BATCH
from .completion import SHELLS, cmd_completion
from .validate import cmd_lint, cmd_validate


ACCOUNT_HELP = "the account id, as usage files name it"
RULES_HELP = ("the rule set: a folder, or a rule set's name (under ./rules, else shipped with ratecard); "
              "default: $RATECARD_RULES, else `rules` in ./ratecard.toml, else the only rule set under ./rules, "
              "else the shipped default")


def _format_option(p, choices=("text", "json"), default: str = "text", notes: dict[str, str] | None = None) -> None:
    p.add_argument("--format", choices=choices, default=default,
                   help=choices_help("output format", choices, default, notes))


def _rules_option(p, extra: str = "") -> None:
    p.add_argument("--rules", metavar="RULES", help=RULES_HELP + extra)


def _check_options(p) -> None:
    p.add_argument("rule_dirs", nargs="*", metavar="RULES_DIR", help="folders to check, each searched at any depth "
                   "(the same as --rules; default: every rule set under ./rules, or ratecard.toml's rules_root, "
                   "else every shipped one)")
    p.add_argument("--rules", action="append", metavar="RULES", help="a folder (searched at any depth) or a rule "
                   "set's name to check (repeatable)")
    p.add_argument("--staged", action="store_true", help="check the rule files as staged in the git index (what "
                   "the next commit holds: deletions included, untracked files left out); used by the pre-commit "
                   "hooks")
    _format_option(p)


def buyer_args(p) -> None:
    p.add_argument("--legal-name", help="the buyer's legal name, as invoices print it")
    p.add_argument("--address", action="append", metavar="LINE", help="a line of the buyer's address (repeatable)")
    p.add_argument("--country", help="the buyer's country, ISO 3166-1 alpha-2, e.g. DE "
                   "(or ISO 3166-2 with the region, e.g. US-CA, for regional tax rates)")
    p.add_argument("--tax-id", help="the buyer's tax id (VAT id), as invoices print it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ratecard", description="Data-driven billing for pay-as-you-go APIs.")
    parser.add_argument("--version", action="version", version=f"ratecard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check rule sets and report every problem")
    _check_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("lint", help="warn about what is valid but suspicious, e.g. volume price cliffs")
    _check_options(p)
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings, too")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("quote", help="price one month of usage for one account")
    p.add_argument("usage", nargs="*", metavar="API=CALLS",
                   help="calls per API, e.g. RenderWidget=1000000; API:OUTCOME=CALLS for an outcome or error code; "
                   "API=CALLS@AMOUNT for the calls' total transaction amount (percentage-priced categories). "
                   "A count is plain digits (2000000), grouped by threes with , or _ (2,000,000), or with a k "
                   "or M suffix (500k, 1.5M); ambiguous forms such as 1.000 or 10m are refused")
    _rules_option(p)
    p.add_argument("--period", type=period_arg, metavar="YYYY-MM", help="billing period (default: the current month in the "
                   "policy's time zone)")
    p.add_argument("--pack", action="append", default=[], metavar="CATEGORY=UNITS",
                   help="what-if resource pack units available (repeatable)")
    p.add_argument("--suspended", action="store_true", help="price as for an account suspended for arrears")
    _format_option(p)
    p.add_argument("--explain", action="store_true", help="say why each tier applied and what the next bound would change")
    p.set_defaults(func=cmd_quote)

    p = sub.add_parser("bill", help="bill a period of usage: one invoice per account, then a reconciliation")
    p.add_argument("--usage", action="append", required=True, metavar="FILE",
                   help="usage file: aggregated usage or call records, CSV or JSON Lines (plain or gzip) or Parquet; "
                        "a glob pattern reads every file it matches; - reads standard input (repeatable)")
    p.add_argument("--period", type=period_arg, metavar="YYYY-MM", help="bill only this period; rows of others are counted "
                   "as out of period")
    _rules_option(p)
    _format_option(p, ("text", "markdown", "html", "json", "jsonl", "pdf"),
                   notes={"jsonl": "one bill a line", "html": "one document, a page per invoice",
                          "pdf": "one PDF, a page break before each invoice; with --out one PDF per invoice"})
    p.add_argument("--out", metavar="DIR", help="write one file per invoice here (jsonl: one bills.jsonl)")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here with their reasons and bill the rest "
                   "(default: list them and bill nothing)")
    add_usage_options(p)
    p.add_argument("--jobs", type=jobs_arg, metavar="N", help="worker processes, 1 to 64 (default: all cores for "
                   "large runs rendered through a template: text, markdown, html; else 1, which is faster for json "
                   "and jsonl)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.add_argument("--db", metavar="PATH", help="refuse accounts this ledger holds in another currency than the "
                   "rules bill in (default: $RATECARD_DB, else `db` in ./ratecard.toml, else ./ratecard.db if it "
                   "exists)")
    p.set_defaults(func=cmd_bill)

    p = sub.add_parser("ratecard", help="render the public rate card from the rules")
    _rules_option(p)
    p.add_argument("--period", type=period_arg, metavar="YYYY-MM", help="the rules in force in this period (default: the latest)")
    _format_option(p, ("markdown", "html"), "markdown")
    p.set_defaults(func=cmd_ratecard)

    p = sub.add_parser("diff", help="what a rules change does to the bills of some usage, per category and account")
    p.add_argument("--base", required=True, metavar="OLD",
                   help="the rules to compare against: a rule set folder, or git:REV for the rules folder as "
                        "committed at git revision REV (e.g. git:main)")
    p.add_argument("--rules", metavar="NEW", help="the new rules: a folder, a rule set's name or git:REV "
                   "(default: as for every command, see `ratecard bill --help`)")
    p.add_argument("--usage", action="append", required=True, metavar="FILE",
                   help="usage file, as for `ratecard bill`; - reads standard input (repeatable)")
    p.add_argument("--period", type=period_arg, metavar="YYYY-MM", help="compare only this period's bills")
    p.add_argument("--alert-pct", type=pct_arg, metavar="N",
                   help="list the bills whose total rises by more than N percent")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here and compare the rest "
                   "(default: list them and compare nothing)")
    _format_option(p, ("text", "json", "html"),
                   notes={"html": "the analyst's page: revenue per category, the accounts that change most, tier "
                          "crossings and each category's cost curve with its cliffs, as one self-contained file"})
    add_usage_options(p)
    p.set_defaults(func=cmd_diff)

    add_usage_command(sub)

    p = sub.add_parser("serve", help="the engine over HTTP: status for gateways, quotes, previews, rate cards, "
                       "validate, diff and the analyst's page, stored invoices")
    p.add_argument("--rules", action="append", default=[], metavar="DIR",
                   help="a rule set folder to serve (repeatable; the first is the default; default: the rule sets "
                        "under ./rules, else the shipped ones)")
    p.add_argument("--db", metavar="PATH", help="the ledger file (default: $RATECARD_DB, else ./ratecard.db when it "
                   "exists; without one, ledger endpoints answer 503)")
    p.add_argument("--tokens", metavar="FILE", help="bearer tokens, one SCOPE:TOKEN a line (scope read or write; "
                   "default: $RATECARD_TOKENS)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=port_arg, default=8421, help="port to listen on (default: 8421; 0: any free port)")
    p.add_argument("--usage", action="append", default=[], metavar="FILE",
                   help="usage files the analyst's page (GET /v1/diff) compares on (repeatable)")
    p.add_argument("--max-body", type=size_arg, default=1 << 20, metavar="BYTES",
                   help="largest request body accepted (default: 1048576)")
    p.add_argument("--max-depth", type=depth_arg, default=32, metavar="N",
                   help="deepest JSON nesting accepted in a body (default: 32)")
    p.add_argument("--status-ttl", type=seconds_arg, default=1.0, metavar="SECONDS",
                   help="the most a cached status answer can lag the ledger (default: 1)")
    p.add_argument("--reload-interval", type=seconds_arg, default=1.0, metavar="SECONDS",
                   help="how often rule files are checked for changes (default: 1)")
    p.add_argument("--workers", type=workers_arg, default=1, metavar="N", help="server processes (default: 1)")
    p.set_defaults(func=cmd_serve)

    # -- the ledger (engine/ledger.py) --
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", metavar="PATH", help="the ledger file (default: $RATECARD_DB, else `db` in "
                    "./ratecard.toml, else ./ratecard.db)")
    at = argparse.ArgumentParser(add_help=False)
    at.add_argument("--at", type=moment_arg, metavar="DATETIME", help="when it happens: ISO 8601 with a UTC offset (default: now)")

    p = sub.add_parser("account", help="create, import, update, activate, show and list accounts in the ledger")
    actions = p.add_subparsers(dest="account_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("create", parents=[db, at], help="create an account (and the ledger, if new)")
    a.add_argument("account", metavar="ACCOUNT", help="the account id, as usage files name it")
    a.add_argument("--name", help="the account holder's name (default: the id)")
    a.add_argument("--currency", required=True, help="ISO 4217 currency of the balance, e.g. EUR")
    buyer_args(a)
    a.set_defaults(func=cmd_account_create)
    a = actions.add_parser("import", parents=[db, at], help="create many accounts from a CSV file, all or "
                           "nothing; importing the same file again changes nothing")
    a.add_argument("file", metavar="FILE", help="CSV with a header: account, currency and optionally name, "
                   "legal_name, address (lines in one quoted field), country, tax_id; - reads standard input")
    a.add_argument("--update", action="store_true", help="set the buyer details of accounts already in the "
                   "ledger from the file (default: a difference is an error)")
    _format_option(a)
    a.set_defaults(func=cmd_account_import)
    a = actions.add_parser("update", parents=[db], help="set the buyer details invoices print from now on")
    a.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    buyer_args(a)
    a.set_defaults(func=cmd_account_update)
    a = actions.add_parser("activate", parents=[db, at], help="activate a service: accept its terms of service")
    a.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    _rules_option(a, "; its folder name is the service activated, which must be a known rule set")
    a.add_argument("--service", metavar="NAME", help="the service by name: the older spelling of --rules NAME")
    a.add_argument("--terms", required=True, metavar="VERSION", help="the version of the terms of service accepted")
    a.set_defaults(func=cmd_account_activate)
    a = actions.add_parser("show", parents=[db], help="an account's balance, deposits, services and bills")
    a.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    _format_option(a)
    a.set_defaults(func=cmd_account_show)
    a = actions.add_parser("list", parents=[db], help="every account with its balance and services")
    _format_option(a)
    a.set_defaults(func=cmd_account_list)

    p = sub.add_parser("settle", parents=[db, at], help="settle a period: record each account's bill, debit it, "
                       "hold deposits and suspend in arrears, as the settlement policy says")
    p.add_argument("--period", required=True, type=period_arg, metavar="YYYY-MM", help="the period to settle; it must have ended")
    p.add_argument("--usage", action="append", required=True, metavar="FILE",
                   help="usage file, as for `ratecard bill`; - reads standard input (repeatable)")
    _rules_option(p, "; its folder name is the service settled")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here and settle every account that has "
                   "none (default: list them and settle nothing)")
    p.add_argument("--batch", type=batch_arg, default=SETTLE_BATCH, metavar="N",
                   help=f"accounts settled in one transaction (default: {SETTLE_BATCH}); a crash leaves each "
                   "batch recorded whole or not at all, and a re-run settles what is missing")
    p.add_argument("--jobs", type=jobs_arg, metavar="N", help="worker processes rendering the invoices, 1 to 64 "
                   f"(default: all cores from {PRERENDER_FROM:,} accounts on, else 1); the documents recorded are "
                   "the same whatever N")
    p.add_argument("--allow-identical-files", action="store_true",
                   help="settle even when two usage files have the same content (default: refused, since "
                   "aggregated usage given twice would be billed twice, for good)")
    add_usage_options(p)
    _format_option(p, ("text", "json", "pdf"),
                   notes={"pdf": "the period's invoices and the corrections this run issued, as `invoice show` "
                          "prints them: one PDF, a page break before each document (the report goes to standard "
                          "error); with --out one PDF per document"})
    p.add_argument("--out", metavar="DIR", help="with --format pdf: write one PDF per document here")
    p.add_argument("--paper", choices=("A4", "Letter"), help=choices_help("with --format pdf: the PDFs' page size",
                   ("A4", "Letter"), "as the rule set's seller file says, else A4"))
    p.set_defaults(func=cmd_settle)

    p = sub.add_parser("credit-note", parents=[db, at], help="issue a credit note to an invoice (a refund or "
                       "goodwill credit): credited to the balance at once")
    p.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    p.add_argument("invoice", metavar="INVOICE", help="the number of the invoice credited")
    p.add_argument("--amount", required=True, help="a positive amount in the invoice's currency, e.g. 25.00")
    p.add_argument("--reason", required=True, help="why, as the credit note prints it")
    _rules_option(p, "; the invoice's rule set, whose policy numbers the credit note")
    p.set_defaults(func=cmd_credit_note)

    p = sub.add_parser("void", parents=[db, at], help="void an unpaid invoice with a credit note for all it "
                       "charges; its scheduled debit is never taken")
    p.add_argument("invoice", metavar="INVOICE", help="the number of the invoice voided")
    p.add_argument("--reason", help="why, as the credit note prints it (default: invoice voided)")
    _rules_option(p, "; the invoice's rule set")
    p.set_defaults(func=cmd_void)

    p = sub.add_parser("invoice", help="reprint a stored invoice, supplementary invoice or credit note")
    actions = p.add_subparsers(dest="invoice_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("show", parents=[db], help="a stored document in any format (text: exactly as issued)")
    a.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    a.add_argument("ref", metavar="PERIOD|NUMBER", help="a period (YYYY-MM: its invoice) or a document's number")
    _format_option(a, DOCUMENT_FORMATS, notes={"text": "exactly as issued"})
    a.add_argument("--paper", choices=("A4", "Letter"), help=choices_help("the PDF's page size", ("A4", "Letter"),
                   "as the rule set's seller file says, else A4"))
    a.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output (a PDF needs it "
                   "unless standard output is redirected)")
    a.set_defaults(func=cmd_invoice_show)

    p = sub.add_parser("collect", parents=[db, at], help="apply the scheduled debits whose deduction window "
                       "has opened")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("topup", parents=[db, at], help="credit an account; resumes its service when the "
                       "policy's resume condition then holds")
    p.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    p.add_argument("amount", type=amount_arg, metavar="AMOUNT", help="a positive amount in the account's currency, e.g. 100.00")
    p.add_argument("--reference", metavar="REF", help="the payment's id: recording it twice credits once")
    p.set_defaults(func=cmd_topup)

    p = sub.add_parser("pack", help="buy resource packs and list them with their units left")
    actions = p.add_subparsers(dest="pack_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("buy", parents=[db, at], help="buy a pack on sale in the price book in force; its "
                           "price is taken from the balance at once")
    a.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    a.add_argument("category", metavar="CATEGORY", help="the category the pack serves, e.g. as `ratecard ratecard` "
                   "lists it")
    a.add_argument("size", type=count_arg, metavar="SIZE", help="units in the pack: one of the sizes on sale, "
                   "e.g. 1000000, 1,000,000 or 1M (see `ratecard quote --help` for how counts are written)")
    _rules_option(a, "; its folder name is the service the pack serves")
    a.add_argument("--reference", metavar="REF", help="the purchase's id: recording it twice buys once")
    _format_option(a)
    a.set_defaults(func=cmd_pack_buy)
    a = actions.add_parser("list", parents=[db, at], help="an account's packs: units used, lost and left, and "
                           "when each expires (expired ones marked)")
    a.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    a.add_argument("--rules", metavar="RULES", help="only the packs of this rule set's service (a folder or a name)")
    a.add_argument("--service", metavar="NAME", help="only the packs of this service (the older spelling of --rules)")
    _format_option(a)
    a.set_defaults(func=cmd_pack_list)

    p = sub.add_parser("status", parents=[db], help="may this account use the service now? active, "
                       "suspended or not activated, with the reason")
    p.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    _rules_option(p, "; its folder name is the service asked about")
    p.add_argument("--service", metavar="NAME", help="the service by name: the older spelling of --rules NAME")
    _format_option(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("statement", parents=[db], help="an account's ledger entries, rendered by a template")
    p.add_argument("account", metavar="ACCOUNT", help=ACCOUNT_HELP)
    p.add_argument("--period", type=period_arg, metavar="YYYY-MM", help="only the entries dated in this month (default: all)")
    _rules_option(p, "; months are in its time zone")
    p.add_argument("--time-zone", type=zone_arg, metavar="ZONE", help="months in this IANA time zone instead")
    _format_option(p, ("text", "markdown", "json"))
    p.set_defaults(func=cmd_statement)

    p = sub.add_parser("init", help="scaffold an analysts' rules repository: a rule set to start from, the "
                       "schemas, pre-commit hooks and editor settings")
    p.add_argument("folder", nargs="?", default=".", metavar="DIR", help="where (default: here); existing files "
                   "are kept")
    p.add_argument("--from", dest="start_from", metavar="RULES", help="the rule set to start from: a folder or a "
                   "rule set's name (default: the shipped default)")
    p.add_argument("--hook-repo", metavar="URL", help="use the hooks of this ratecard repository (default: the "
                   "installed ratecard, as local hooks)")
    p.add_argument("--hook-rev", metavar="REV", help="the tag or commit of --hook-repo (default: this version's tag)")
    p.add_argument("--schemas", action="store_true", help="only bring the schema copy in DIR/schemas up to date "
                   "with this ratecard's")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("completion", help="print a shell completion script: commands, options, formats and rule "
                       "set names (see the README for how to install it)")
    p.add_argument("shell", nargs="?", choices=SHELLS, help=choices_help("the shell", SHELLS))
    p.add_argument("--rule-sets", action="store_true", help="list the rule set names --rules accepts here instead "
                   "(what the scripts complete --rules with)")
    p.set_defaults(func=cmd_completion)

    p = sub.add_parser("ledger", help="check or migrate the ledger file")
    actions = p.add_subparsers(dest="ledger_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("check", parents=[db], help="prove that every balance is the sum of its entries")
    a.set_defaults(func=cmd_ledger_check)
    a = actions.add_parser("migrate", parents=[db], help="bring an older ledger file to this release's schema")
    a.set_defaults(func=cmd_ledger_migrate)
    return parser
