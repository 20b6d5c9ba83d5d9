"""Resource packs: buying one (prepaid from the balance), the units each period's bill takes from
the account's packs and those lost when a pack expires (rows of `pack_units`, written in the bill's
own transaction), and reading them back."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ..formatting import format_money
from . import accounts
from . import postings as P
from .records import Applied, Pack, PackBought, PackUnits
from ..formatting import counted
from .values import LedgerError, as_text, check_reference, moment, parse_pack_size, settlement, stamp

PACK_COLUMNS = ("id, account, service, category, units, unit, price, currency, bought_at, expires_at, time_zone, "
                 "rules_name, rules_fingerprint, reference")


def packs(store, account: str, *, service: str | None = None, at: datetime | None = None,
          period: str | None = None, as_of: datetime | None = None) -> list[Pack]:
    """The account's resource packs, soonest-expiring first. With `at`: as they stood then (packs
    bought by then, units used and lost by then, `expired` once `at` is past the expiry). With
    `period`: the units used and lost for that period and those before it."""
    accounts.account(store, account)  # UnknownAccount for an account the ledger does not have
    when = None if at is None else stamp(at)
    rows = store.read(f"SELECT {PACK_COLUMNS} FROM packs WHERE account = ? AND (?2 IS NULL OR service = ?2) "
                      "AND (?3 IS NULL OR bought_at <= ?3) ORDER BY expires_at, id", (account, service, when))
    history: dict[str, list[PackUnits]] = {}
    for pack, kind, period_, units, at_ in store.read(
            "SELECT u.pack, u.kind, u.period, u.units, e.at FROM pack_units AS u JOIN entries AS e "
            "ON e.seq = u.entry WHERE e.account = ?1 AND (?2 IS NULL OR e.at <= ?2) "
            "AND (?3 IS NULL OR u.period <= ?3) ORDER BY u.entry", (account, when, period)):
        history.setdefault(pack, []).append(PackUnits(kind, period_, units, moment(at_)))
    return [pack_of(r, history.get(r[0], ()), at or as_of) for r in rows]


def buy_pack(store, rules, account: str, category: str, size, at: datetime,
             reference: str | None = None) -> PackBought:
    """Buy a resource pack of `category` holding `size` units, as sold by the price book of `rules`
    in force at `at`; its service is the rule set's. The price is taken from the balance at once:
    a pack is prepaid, so the available balance (less deposits) must cover it. The pack serves
    every period from the one it is bought in to the one it expires in, the book's
    `valid_for_months` later. With a `reference` (the caller's id of the purchase), recording the
    same purchase again changes nothing."""
    S = settlement()
    from ..periods import period_of
    from ..rating import tariff

    check_reference(reference, "pack purchase")
    period = period_of(at, rules.latest[2].time_zone)
    t = tariff(rules, period)
    book, policy, service = t.book, t.policy, rules.name
    offer = pack_offer(book, service, category, size)
    price = Decimal(str(offer.price)) if isinstance(offer.price, float) else Decimal(offer.price)
    expires = S.pack_expiry(at, book.pack_validity_months, policy.time_zone)
    when = stamp(at)
    with store.write() as db:
        position = P.position(db, account)
        if reference is not None:
            row = db.execute(f"SELECT {PACK_COLUMNS} FROM packs WHERE account = ? AND reference = ?",
                             (account, reference)).fetchone()
            if row is not None:
                old = pack_of(row, (), None)
                if (old.service, old.category, old.units) != (service, category, offer.units):
                    raise LedgerError(f"pack purchase {reference!r} of {account} was recorded as pack {old.id}, "
                                      f"{counted(old.units, old.unit)} of {old.service} {old.category}, not "
                                      f"{offer.units:,} of {service} {category}; nothing was changed")
                recorded = next(p for p in packs(store, account) if p.id == old.id)
                return PackBought(recorded, P.unchanged(account, position, f"pack purchase {reference} was "
                                                            f"already recorded as pack {old.id}"))
        P.check_time(db, account, when)
        if db.execute("SELECT 1 FROM services WHERE account = ? AND service = ?", (account, service)).fetchone() \
                is None:
            raise LedgerError(f"account {account} has not activated {service}; a pack serves a service the "
                              "account uses: activate it first with `ratecard account activate`; nothing was "
                              "changed")
        if position.currency != book.currency:
            raise LedgerError(f"the account is in {position.currency} but {service} sells packs in "
                              f"{book.currency}; nothing was changed")
        if position.available < price:
            raise LedgerError(f"{account} cannot pay for the pack: it costs {format_money(price, book.currency)} "
                              f"and only {format_money(position.available, position.currency)} is available "
                              "(the balance less deposits held); a pack is paid when it is bought, so top up "
                              "first; nothing was changed")
        number = db.execute("SELECT count(*) FROM packs").fetchone()[0] + 1
        pack_id = f"PK-{number:06d}"
        local_expiry = expires.isoformat(timespec="seconds")
        what = f"{category} pack {pack_id} of {counted(offer.units, book.unit)}"
        note = f"; valid until {local_expiry}" + (f" (reference {reference})" if reference else "")
        outcome = S.apply_pack_purchase(position, service, period, price, pack_id, what, note)
        applied = P.record(db, account, position, when, outcome.changes, outcome.position)
        row = (pack_id, account, service, category, offer.units, book.unit, as_text(price), book.currency, when,
               stamp(expires), policy.time_zone, rules.name, t.fingerprint, reference)
        db.execute(f"INSERT INTO packs ({PACK_COLUMNS}, entry) VALUES ({', '.join('?' * (len(row) + 1))})",
                   (*row, applied.entries[0].seq))
    return PackBought(pack_of(row, (), at), applied)


def pack_balances(store, account: str, service: str, when_, zone: str, *, before_bill: bool = False) -> tuple:
    """The account's packs of `service` that serve the period of `when_`, with their units left,
    as `rating.rate` takes them. `before_bill`: as they were before the period's bill was recorded."""
    if not before_bill:
        return pack_balances_of(store, [account], service, when_, zone)[account]
    cut = (" AND u.entry < (SELECT e.seq FROM entries AS e WHERE e.account = p.account AND e.service = "
           "p.service AND e.period = :period AND e.kind = 'bill-issued')")
    rows = store.read(
        "SELECT p.id, p.category, p.expires_at, p.units - coalesce((SELECT sum(u.units) FROM pack_units AS u "
        f"WHERE u.pack = p.id{cut}), 0) FROM packs AS p WHERE p.account = :account AND p.service = :service "
        "AND p.bought_at < :end AND p.expires_at > :start ORDER BY p.expires_at, p.id",
        {"account": account, "service": service, "period": when_.period, "start": stamp(when_.start),
         "end": stamp(when_.end)})
    return _balances(rows, zone)


def pack_balances_of(store, accounts, service: str, when_, zone: str) -> dict[str, tuple]:
    """`pack_balances` of each of `accounts` (as they are now), in one query."""
    accounts = list(accounts)
    found: dict[str, list] = {account: [] for account in accounts}
    for start in range(0, len(accounts), P.MAX_VARIABLES):
        part = accounts[start:start + P.MAX_VARIABLES]
        for account, *row in store.read(
                "SELECT p.account, p.id, p.category, p.expires_at, p.units - coalesce((SELECT sum(u.units) FROM "
                "pack_units AS u WHERE u.pack = p.id), 0) FROM packs AS p WHERE p.service = ? AND p.bought_at < ? "
                f"AND p.expires_at > ? AND p.account IN ({', '.join('?' * len(part))}) "
                "ORDER BY p.account, p.expires_at, p.id",
                (service, stamp(when_.end), stamp(when_.start), *part)):
            found[account].append(row)
    return {account: _balances(rows, zone) for account, rows in found.items()}


def with_packs(store, accounts, service: str) -> set[str]:
    """Those of `accounts` that ever bought a pack of `service`."""
    accounts, out = list(accounts), set[str]()
    for start in range(0, len(accounts), P.MAX_VARIABLES):
        part = accounts[start:start + P.MAX_VARIABLES]
        out.update(r[0] for r in store.read(f"SELECT DISTINCT account FROM packs WHERE service = ? AND account IN "
                                            f"({', '.join('?' * len(part))})", (service, *part)))
    return out


def _balances(rows, zone: str) -> tuple:
    if not rows:  # most accounts: no pack
        return ()
    S = settlement()
    from ..rating import PackBalance

    return tuple(PackBalance(pack, category, left, S.rating_expiry(moment(expires), zone))
                 for pack, category, expires, left in rows if left > 0)


def take_packs(db, bill, service, when_, position, when) -> Applied:
    """Record the pack units a bill uses, then the units lost by the service's packs that expire by
    the end of its period (they can serve no later period). Part of the bill's transaction: the
    primary key of `pack_units` (pack, kind, period) makes taking them twice impossible."""
    from zoneinfo import ZoneInfo

    S = settlement()

    account, period = bill.account, bill.period
    changes: list = []  # of settlement.Change
    rows: list[tuple[str, str, int]] = []  # (pack, kind, units)
    taken: dict[str, int] = {}
    for line in bill.lines:
        for use in line.packs_used:
            changes.append(S.pack_use(service, period, use.pack_id, line.category, use.units_used, use.units_left,
                                      bill.unit))
            rows.append((use.pack_id, S.PACK_USE, use.units_used))
            taken[use.pack_id] = taken.get(use.pack_id, 0) + use.units_used
    settled = _settled_periods(db, account, service)  # this bill's row is already in
    for pack, category, unit, bought, expires, zone, left in db.execute(
            "SELECT p.id, p.category, p.unit, p.bought_at, p.expires_at, p.time_zone, p.units - coalesce(("
            "SELECT sum(u.units) FROM pack_units AS u WHERE u.pack = p.id), 0) FROM packs AS p WHERE p.account = ? "
            "AND p.service = ? AND p.expires_at <= ? AND NOT EXISTS (SELECT 1 FROM pack_units AS u WHERE "
            "u.pack = p.id AND u.kind = 'pack-expired') ORDER BY p.expires_at, p.id",
            (account, service, stamp(when_.end))).fetchall():
        # Units are lost only once every period the pack serves is billed: an earlier period settled
        # late must still find them (settling in any order gives the money of settling in order).
        if not set(served_periods(moment(bought), moment(expires), zone)) <= settled:
            continue
        left -= taken.get(pack, 0)
        if left > 0:
            expired = moment(expires).astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")
            changes.append(S.pack_expired(service, period, pack, category, left, unit, expired))
            rows.append((pack, S.PACK_EXPIRED, left))
    applied = P.record(db, account, position, when, changes, position)
    for (pack, kind, units), entry in zip(rows, applied.entries):
        db.execute("INSERT INTO pack_units (pack, kind, period, units, entry) VALUES (?, ?, ?, ?, ?)",
                   (pack, kind, period, units, entry.seq))
    return applied


def served_periods(bought_at: datetime, expires_at: datetime, zone: str) -> list[str]:
    """The periods a pack serves, in order: from the one it is bought in to the one it expires in."""
    S = settlement()
    from ..periods import next_month, parse_period, period_of

    month, last = parse_period(period_of(bought_at, zone)), parse_period(S.last_period_served(expires_at, zone))
    out = []
    while month <= last:
        out.append(f"{month.year:04d}-{month.month:02d}")
        month = next_month(month)
    return out


def _settled_periods(db, account: str, service: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT period FROM bills WHERE account = ? AND service = ?",
                                     (account, service))}


def earlier_unsettled(store, bill, service: str) -> list[tuple[str, str]]:
    """(pack, period) for each pack `bill` takes units from that also serves an earlier period of
    the account with no bill yet. Those units belong to the earlier period first: taking them now
    would make the money depend on the order the periods are settled in."""
    used = sorted({use.pack_id for line in bill.lines for use in line.packs_used})
    if not used:
        return []
    settled = {r[0] for r in store.read("SELECT period FROM bills WHERE account = ? AND service = ?",
                                        (bill.account, service))}
    found = []
    for pack, bought, expires, zone in store.read(
            f"SELECT id, bought_at, expires_at, time_zone FROM packs WHERE id IN ({', '.join('?' * len(used))}) "
            "ORDER BY expires_at, id", tuple(used)):
        found += [(pack, q) for q in served_periods(moment(bought), moment(expires), zone)
                  if q < bill.period and q not in settled]
    return found


def verify_packs(store) -> list[str]:
    """Every pack was paid for by its own purchase entry; every unit used or lost has its own entry;
    no pack gave more units than it held."""
    problems = []
    for pack, account, price, entry, kind, amount, ref, owner in store.read(
            "SELECT p.id, p.account, p.price, p.entry, e.kind, e.amount, e.ref, e.account FROM packs AS p "
            "LEFT JOIN entries AS e ON e.seq = p.entry ORDER BY p.id"):
        if (kind, ref, owner) != ("pack-purchase", pack, account) or Decimal(amount) != -Decimal(price):
            problems.append(f"{account}: pack {pack} costs {price} but its entry {entry} is {kind} of {amount} "
                            f"for {ref}")
    for pack, kind, period, entry, entry_kind, ref in store.read(
            "SELECT u.pack, u.kind, u.period, u.entry, e.kind, e.ref FROM pack_units AS u "
            "LEFT JOIN entries AS e ON e.seq = u.entry ORDER BY u.entry"):
        if (entry_kind, ref) != (kind, pack):
            problems.append(f"pack {pack}: {kind} for {period} has entry {entry} of kind {entry_kind} for {ref}")
    for pack, units, taken in store.read(
            "SELECT p.id, p.units, sum(u.units) FROM packs AS p JOIN pack_units AS u ON u.pack = p.id "
            "GROUP BY p.id HAVING sum(u.units) > p.units"):
        problems.append(f"pack {pack} holds {units} units but {taken} were used or lost")
    kinds = dict(store.read("SELECT kind, count(*) FROM entries WHERE kind IN ('pack-purchase', 'pack-use', "
                            "'pack-expired') GROUP BY kind"))
    rows = {"pack-purchase": store.read("SELECT count(*) FROM packs")[0][0]}
    rows |= dict(store.read("SELECT kind, count(*) FROM pack_units GROUP BY kind"))
    for kind in ("pack-purchase", "pack-use", "pack-expired"):
        if kinds.get(kind, 0) != rows.get(kind, 0):
            problems.append(f"{kinds.get(kind, 0)} {kind} entries but {rows.get(kind, 0)} recorded")
    return problems


def pack_offer(book, service: str, category: str, size):
    """The pack of `category` and `size` on sale in `book`, or a LedgerError saying what is on sale."""
    on_sale = [c.id for c in book.categories.values() if c.packs]
    where = f"the {service} price book in force from {book.effective_from.isoformat()}"
    cat = book.categories.get(category)
    if cat is None:
        raise LedgerError(f"unknown category {category!r} in {where}; packs are sold for: "
                          f"{', '.join(on_sale) or 'no category'}")
    if not cat.packs:
        raise LedgerError(f"no {category} packs are on sale in {where}; packs are sold for: "
                          f"{', '.join(on_sale) or 'no category'}")
    units = parse_pack_size(size)
    for offer in cat.packs:
        if offer.units == units:
            return offer
    sizes = ", ".join(f"{o.units:,} ({format_money(Decimal(o.price), book.currency)})" for o in cat.packs)
    raise LedgerError(f"no {category} pack of {counted(units, book.unit)} is on sale in {where}; the sizes on sale "
                      f"are: {sizes}")


def pack_of(r, history, as_of) -> Pack:
    return Pack(r[0], r[1], r[2], r[3], r[4], r[5], Decimal(r[6]), r[7], moment(r[8]), moment(r[9]), r[10], r[11],
                r[12], r[13], tuple(history), as_of)
