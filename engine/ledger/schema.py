"""The ledger file's schema: an ordered list of migrations, each applied once, in its own
transaction, and recorded in `ratecard_schema`. A migration is history: once released it never
changes; a later release appends one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .values import LedgerError


@dataclass(frozen=True)
class Migration:
    """A schema version: its statements, run in order in one transaction. A step that is not one
    fixed statement (it reads the ledger first) is a function of the connection."""

    version: int
    description: str
    statements: tuple[str | Callable, ...]

    def apply(self, db) -> None:
        for statement in self.statements:
            if callable(statement):
                statement(db)
            else:
                db.execute(statement)


# The entry kinds of schema version 1, written out rather than read from `settlement.ENTRY_KINDS`: a
# migration is history and must not change. A later release adds kinds with a migration that
# inserts rows into `entry_kinds` (e.g. a resource pack purchase, with a `packs` table).
_KINDS_V1 = (
    ("account-opened", "the account was created"),
    ("service-activated", "a service was activated by accepting its terms of service"),
    ("terms-accepted", "a newer version of a service's terms of service was accepted"),
    ("bill-issued", "a period's bill was recorded (the fee is taken by its debit)"),
    ("debit-scheduled", "a bill's fee was scheduled for the policy's deduction window"),
    ("debit", "a bill's fee was taken from the balance"),
    ("top-up", "money was credited to the balance"),
    ("freeze", "part of the balance was held as a deposit"),
    ("freeze-failed", "a deposit could not be held for lack of available balance"),
    ("freeze-released", "a deposit was released"),
    ("suspended", "the service was stopped"),
    ("resumed", "the service was restarted"),
)


def _append_only(table: str) -> tuple[str, ...]:
    return tuple(f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                 f"BEGIN SELECT RAISE(ABORT, '{table} are append-only: rows cannot be changed or deleted'); END"
                 for op in ("UPDATE", "DELETE"))


# `bills` as schema version 1 made it: migration 5 finds it by this exact text.
_BILLS_V1 = """CREATE TABLE bills (
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            invoice_number TEXT NOT NULL UNIQUE,
            currency TEXT NOT NULL,
            total TEXT NOT NULL,
            list_cost TEXT NOT NULL,        -- every billable unit at pay-as-you-go prices
            rules_name TEXT NOT NULL,
            rules_fingerprint TEXT NOT NULL,
            bill_json TEXT NOT NULL,
            invoice_text TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            PRIMARY KEY (account, service, period),
            FOREIGN KEY (account, service) REFERENCES services (account, service)
        ) WITHOUT ROWID"""


# Migration 5's `bills`: the two texts may be NULL, both or neither (a CHECK: a bill that has one has
# both; `ratecard ledger check` finds one with neither whose document does not carry them).
_BILLS_V5 = """CREATE TABLE bills (
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            invoice_number TEXT NOT NULL UNIQUE,
            currency TEXT NOT NULL,
            total TEXT NOT NULL,
            list_cost TEXT NOT NULL,        -- every billable unit at pay-as-you-go prices
            rules_name TEXT NOT NULL,
            rules_fingerprint TEXT NOT NULL,
            bill_json TEXT,                 -- NULL: its invoice document's (documents.bill_json)
            invoice_text TEXT,              -- NULL: its invoice document's (documents.document_text)
            issued_at TEXT NOT NULL,
            PRIMARY KEY (account, service, period),
            FOREIGN KEY (account, service) REFERENCES services (account, service),
            CHECK ((bill_json IS NULL) = (invoice_text IS NULL))
        ) WITHOUT ROWID"""


def _bills_texts_nullable(db) -> None:
    """Drops the NOT NULL of `bills.bill_json` and `bills.invoice_text` (and adds the CHECK) by
    SQLite's documented procedure for a schema change that leaves the stored rows as they are
    (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"):
    the table's definition in `sqlite_master` is rewritten and the schema version bumped, in the
    migration's transaction. Not the 12-step rebuild: that copies every bill (about 3 KB each, 300 MB
    at 100k bills, and growing every month) into a new table, and needs foreign keys off, which
    SQLite allows only outside a transaction, while `debits` and `documents` refer to `bills`. Here
    nothing is copied: the migration takes milliseconds at any size, and the table, its rows, indexes,
    append-only triggers and the foreign keys to and from it are the same b-trees as before (a
    column's NOT NULL and a table's CHECK are not part of the stored format; every existing row has
    both texts, so it meets the CHECK, which `PRAGMA integrity_check` verifies). SQLite 3.40 has no
    `ALTER TABLE ... DROP NOT NULL`. The definition is replaced only when it is exactly version 1's,
    so a ledger whose `bills` is anything else is refused rather than guessed at."""
    (version,) = db.execute("PRAGMA schema_version").fetchone()
    db.execute("PRAGMA writable_schema = ON")
    try:
        changed = db.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'bills' AND sql = ?",
                             (_BILLS_V5, _BILLS_V1)).rowcount
        if changed == 1:
            # Every connection (this one included) reads the schema again before its next statement.
            db.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        db.execute("PRAGMA writable_schema = OFF")
    if changed != 1:
        raise LedgerError("the ledger's bills table is not the one schema version 1 created (changed by hand?), so "
                          "it cannot be migrated to version 5")
    db.execute("SELECT bill_json, invoice_text FROM bills LIMIT 0")  # the new definition parses


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "accounts, services, entries, bills and debits", (
        "CREATE TABLE ratecard_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL)",
        "CREATE TABLE entry_kinds (kind TEXT PRIMARY KEY, description TEXT NOT NULL) WITHOUT ROWID",
        *(f"INSERT INTO entry_kinds VALUES ('{k}', '{d.replace(chr(39), chr(39) * 2)}')" for k, d in _KINDS_V1),
        """CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            currency TEXT NOT NULL,
            created_at TEXT NOT NULL,
            balance TEXT NOT NULL,      -- the sum of the account's entries' amounts
            frozen TEXT NOT NULL,       -- the sum of their frozen changes: deposits held
            last_at TEXT NOT NULL       -- the time of the latest entry: entries are in time order
        ) WITHOUT ROWID""",
        """CREATE TABLE services (
            account TEXT NOT NULL REFERENCES accounts(id),
            service TEXT NOT NULL,
            activated_at TEXT NOT NULL,
            terms_version TEXT NOT NULL,
            terms_accepted_at TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'suspended')),
            since TEXT NOT NULL,
            reason TEXT NOT NULL,
            arrears_action TEXT,        -- the policy's terms as of the latest debit
            resume_when TEXT,
            frozen TEXT NOT NULL,       -- the deposit held for this service
            frozen_period TEXT,
            pending_freeze TEXT,        -- a deposit that could not be held, retried by top-ups
            pending_period TEXT,
            PRIMARY KEY (account, service)
        ) WITHOUT ROWID""",
        """CREATE TABLE entries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL REFERENCES accounts(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL REFERENCES entry_kinds(kind),
            service TEXT,
            period TEXT,
            amount TEXT NOT NULL,           -- added to the balance
            frozen_change TEXT NOT NULL,    -- added to the deposits held
            balance_after TEXT NOT NULL,
            frozen_after TEXT NOT NULL,
            reason TEXT NOT NULL,
            ref TEXT
        )""",
        "CREATE INDEX entries_by_account ON entries (account, seq)",
        "CREATE UNIQUE INDEX one_bill_entry ON entries (account, service, period) WHERE kind = 'bill-issued'",
        "CREATE UNIQUE INDEX one_debit ON entries (account, service, period) WHERE kind = 'debit'",
        "CREATE UNIQUE INDEX one_top_up_per_reference ON entries (account, ref) WHERE kind = 'top-up' "
        "AND ref IS NOT NULL",
        *_append_only("entries"),
        _BILLS_V1,
        *_append_only("bills"),
        """CREATE TABLE debits (
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            amount TEXT NOT NULL,
            due_at TEXT NOT NULL,           -- the deduction window opens
            closes_at TEXT NOT NULL,        -- ... and closes (exclusive)
            arrears_action TEXT NOT NULL,   -- the policy's terms, so that collecting needs no rules
            resume_when TEXT NOT NULL,
            freeze TEXT,
            freeze_basis TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('scheduled', 'applied')),
            entry INTEGER REFERENCES entries (seq),
            PRIMARY KEY (account, service, period),
            FOREIGN KEY (account, service, period) REFERENCES bills (account, service, period),
            CHECK ((status = 'applied') = (entry IS NOT NULL))
        ) WITHOUT ROWID""",
        "CREATE INDEX debits_due ON debits (status, due_at)",
    )),
    # Resource packs. Units used and lost are rows of `pack_units` (one per pack, kind and period,
    # each with its entry), never a counter updated in place: a pack's units left are its units less
    # those rows, and a settlement that ran already cannot take a pack's units again.
    Migration(2, "resource packs: packs, their units used and lost", (
        *(f"INSERT INTO entry_kinds VALUES ('{k}', '{d}')" for k, d in (
            ("pack-purchase", "a resource pack was bought: its price was taken from the balance"),
            ("pack-use", "units of a resource pack were used by a period''s bill"),
            ("pack-expired", "a resource pack expired: the units left in it were lost"))),
        """CREATE TABLE packs (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            category TEXT NOT NULL,
            units INTEGER NOT NULL CHECK (units > 0),
            unit TEXT NOT NULL,
            price TEXT NOT NULL,
            currency TEXT NOT NULL,
            bought_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,       -- exclusive: the pack serves the periods before it ends
            time_zone TEXT NOT NULL,        -- the policy's, in which its validity was counted
            rules_name TEXT NOT NULL,
            rules_fingerprint TEXT NOT NULL, -- the price book versions that sold it
            reference TEXT,                 -- the caller's id of the purchase: recorded once
            entry INTEGER NOT NULL UNIQUE REFERENCES entries (seq),
            FOREIGN KEY (account, service) REFERENCES services (account, service),
            CHECK (expires_at > bought_at)
        ) WITHOUT ROWID""",
        "CREATE INDEX packs_by_account ON packs (account, service, expires_at)",
        "CREATE UNIQUE INDEX one_pack_per_reference ON packs (account, reference) WHERE reference IS NOT NULL",
        *_append_only("packs"),
        """CREATE TABLE pack_units (
            pack TEXT NOT NULL REFERENCES packs (id),
            kind TEXT NOT NULL CHECK (kind IN ('pack-use', 'pack-expired')),
            period TEXT NOT NULL,           -- the period whose settlement used (or found expired) them
            units INTEGER NOT NULL CHECK (units > 0),
            entry INTEGER NOT NULL UNIQUE REFERENCES entries (seq),
            PRIMARY KEY (pack, kind, period)
        ) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX one_expiry_per_pack ON pack_units (pack) WHERE kind = 'pack-expired'",
        *_append_only("pack_units"),
    )),
    # Numbered documents. Every invoice, supplementary invoice and credit note from now on is a row
    # of `documents`, numbered in its series in the transaction that records it: the number is the
    # series' count of documents plus one, under SQLite's write lock, so numbers never skip (a
    # transaction that dies leaves no row) and never repeat (UNIQUE (series, seq)). A bill recorded
    # before this version keeps the number it was issued with (its content fingerprint).
    Migration(3, "numbered documents: invoices, supplementary invoices, credit notes; buyer details", (
        *(f"INSERT INTO entry_kinds VALUES ('{k}', '{d}')" for k, d in (
            ("supplementary-invoice", "a supplementary invoice billed usage a period''s invoice missed: its "
             "amount was taken from the balance"),
            ("credit-note", "a credit note reduced what an invoice charged: its amount was credited to the balance "
             "(nothing, when it cancels a debit not yet taken)"))),
        """CREATE TABLE documents (
            number TEXT PRIMARY KEY,
            series TEXT NOT NULL,           -- the number less its place in the series, e.g. FR-2020-
            seq INTEGER NOT NULL CHECK (seq > 0),
            kind TEXT NOT NULL CHECK (kind IN ('invoice', 'supplementary-invoice', 'credit-note')),
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            refers_to TEXT,                 -- the invoice a supplementary invoice or credit note corrects
            cause TEXT NOT NULL CHECK (cause IN ('settlement', 'correction', 'manual', 'void')),
            reason TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount TEXT NOT NULL,           -- what the document charges (or credits): never negative
            fingerprint TEXT NOT NULL,      -- the content fingerprint of the bill it carries
            bill_json TEXT,                 -- an invoice's bill; a correction's re-rated bill
            document_json TEXT NOT NULL,    -- the document as `ratecard invoice show --format json` prints it
            document_text TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            entry INTEGER UNIQUE REFERENCES entries (seq),
            UNIQUE (series, seq),
            FOREIGN KEY (account, service, period) REFERENCES bills (account, service, period),
            CHECK ((kind = 'invoice') = (refers_to IS NULL))
        ) WITHOUT ROWID""",
        "CREATE INDEX documents_by_period ON documents (account, service, period, issued_at)",
        "CREATE UNIQUE INDEX one_void_per_invoice ON documents (refers_to) WHERE cause = 'void'",
        *_append_only("documents"),
        # A voided invoice whose debit was still scheduled: the debit is never taken.
        """CREATE TABLE cancelled_debits (
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            document TEXT NOT NULL REFERENCES documents (number),
            PRIMARY KEY (account, service, period),
            FOREIGN KEY (account, service, period) REFERENCES debits (account, service, period)
        ) WITHOUT ROWID""",
        *_append_only("cancelled_debits"),
        # The buyer as invoices name it (an account's `name` stays its display name).
        "ALTER TABLE accounts ADD COLUMN legal_name TEXT",
        "ALTER TABLE accounts ADD COLUMN address TEXT",
        "ALTER TABLE accounts ADD COLUMN country TEXT",
        "ALTER TABLE accounts ADD COLUMN tax_id TEXT",
    )),
    # The time zone of the service's settlement policy, so that `status` and `account show` print
    # times as the invoices do, without loading any rules. Set on activation (when the rule set is
    # at hand) and by every settlement.
    Migration(4, "the time zone each service's times are shown in", (
        "ALTER TABLE services ADD COLUMN time_zone TEXT",
    )),
    # A bill recorded with its invoice document (every settlement since version 3) keeps its bill JSON
    # and invoice text only there: `documents.bill_json` and `documents.document_text` of the document
    # numbered `bills.invoice_number`, which every reader takes them from when the bill's are NULL.
    # They were stored twice, a quarter of what SQLite spent recording a settlement. Bills recorded
    # before keep theirs (a recorded row is never altered).
    Migration(5, "a settled bill's JSON and invoice text kept once, in its invoice document", (
        _bills_texts_nullable,
    )),
)
LATEST = MIGRATIONS[-1].version
