"""The ledger: accounts, their services, bills, debits, top-ups, deposits and service states, kept in
one SQLite file. `ratecard.settlement` decides what happens; this package stores it, safely.

    from ratecard.ledger import Ledger
    with Ledger("ratecard.db", readonly=True) as ledger:
        ledger.status("acct-42", "<service>").allowed      # one indexed query, no process start

The package, by what each part does: `storage` (the file: opening, refusing what is not a ledger,
migrating, transactions) and `schema` (the ordered migrations); `postings` (appending entries, the
one way money and service states change); `accounts`; `packs`; `settle` (bills, their debits);
`collect` (the scheduled debits taken); `documents` (recorded invoices); `statements` (statements
and `verify`); `records` (the frozen results) and `values` (errors, stored times and amounts). `Ledger` (in `facade`) hands each
call to the module that does it.

How it stays right:

- **One file** (`--db PATH`, else ``$RATECARD_DB``, else ``./ratecard.db``), created and migrated by
  ratecard. Migrations are an ordered list, each applied in its own transaction and recorded in the
  `ratecard_schema` table; the file also carries an SQLite application id. A file that is not a
  ledger (not SQLite, another program's database, or a ledger written by a newer release) is
  refused before anything is written to it.
- **Money is exact**: decimal text in the database (never REAL), summed in Python with Decimal,
  never with SQL ``SUM()``.
- **Append-only history**: every change is one row of `entries` (time, kind, reason, change to the
  balance and to the deposit held, and the balance and deposit after it). Triggers refuse UPDATE and
  DELETE on entries and bills. `accounts.balance` and `accounts.frozen` are kept in step with the
  entries in the same transaction; `Ledger.verify()` re-adds every entry to prove it.
- **Nothing counted twice**: one bill per account, service and period (primary key), and one
  ``debit`` entry per account, service and period (a partial unique index). Each account is settled
  in one ``BEGIN IMMEDIATE`` transaction, so a crash leaves it wholly settled or untouched and a
  re-run settles exactly the rest; two concurrent runs serialize per account and the later one
  finds the work done.
- **Resource packs** are rows of `packs`, each paid by its own ``pack-purchase`` entry when bought.
  The units a settlement takes from them, and those lost when a pack expires, are rows of
  `pack_units` (one per pack, kind and period) written in the bill's own transaction, each with its
  ``pack-use`` or ``pack-expired`` entry: a re-run or a crash never takes a pack's units twice. A
  pack serves every period it overlaps; its units left are lost when the last of them is settled.
- **Times** are aware datetimes passed in by the caller (the CLI reads the clock), stored as UTC ISO
  8601 text of fixed width so that they sort as text. An account's entries are recorded in time
  order: a change dated before the account's latest entry is refused.
"""

from __future__ import annotations

from .facade import Ledger
from .records import (Account, Applied, BillRecord, Charge, Collected, Entry, Pack, PackBought, PackUnits,
                      ServiceInfo, Settled, SettleReport, Statement, Status, Streamed, Unbilled)
from .schema import LATEST, MIGRATIONS, Migration
from .values import (ACTIVE, APPLICATION_ID, BUSY_TIMEOUT_S, DB_ENV, DEFAULT_DB, NOT_ACTIVATED, SUSPENDED, LedgerError,
                     NotALedger, SettleInterrupted, UnknownAccount, default_path, moment, parse_amount,
                     parse_pack_size, stamp)

# A seam for fault-injection tests (see `values.step`): called with a step name at each point where a
# crash would leave a different state. Never set in production.
_checkpoint_hook = None

__all__ = [
    "ACTIVE", "APPLICATION_ID", "BUSY_TIMEOUT_S", "DB_ENV", "DEFAULT_DB", "LATEST", "MIGRATIONS", "NOT_ACTIVATED",
    "SUSPENDED", "Account", "Applied", "BillRecord", "Charge", "Collected", "Entry", "Ledger", "LedgerError",
    "Migration", "NotALedger", "Pack", "PackBought", "PackUnits", "ServiceInfo", "SettleInterrupted", "SettleReport",
    "Settled", "Statement", "Status", "Streamed", "Unbilled", "UnknownAccount", "default_path", "moment", "parse_amount",
    "parse_pack_size", "stamp",
]
