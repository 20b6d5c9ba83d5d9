"""Settlement decisions for one account, as the settlement policy says. Pure: no I/O, no clock.

The ledger (`ratecard.ledger`) stores what this module decides; keeping the decisions here lets them
be tested (and reasoned about) without a database:

- when a period may be settled, when its bill is issued and when its fee falls due (`schedule`);
- the deposit freeze: a percentage of the period's list-price cost (`list_price_cost`,
  `freeze_amount`);
- what applying a debit or a top-up does to the balance, the deposit held and the service
  (`apply_debit`, `apply_top_up`), as a list of `Change`s, each of which becomes one ledger entry;
- resource packs: when a pack expires (`pack_expiry`), which periods it serves (`pack_serves`), and
  the entries of buying one, using it and losing what is left at expiry (`apply_pack_purchase`,
  `pack_use`, `pack_expired`).

Balance, deposit and standing
    `balance` is what the account holds; `frozen` is the part of it held as deposits, so the
    available balance is ``balance - frozen``. A deposit is held per service: settling a period
    releases the service's previous deposit and then tries to freeze the new one, which succeeds
    only if the available balance covers it. A failed freeze stays *pending* and is retried by every
    top-up.

    A service is in good standing when the balance is not negative and, if the policy resumes on
    ``freeze-succeeds``, no freeze is pending. With the ``suspend-service`` arrears action, a
    service that falls out of good standing is suspended, and a suspended service resumes as soon
    as it is back in good standing (after a top-up, or after a later settlement whose freeze
    succeeds). So ``suspended`` always means "out of good standing under the policy's resume
    condition", and a service is never suspended and resumed by the same change.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Mapping
from zoneinfo import ZoneInfo

from .bill import builder
from .exact import EXACT
from .errors import PeriodError
from .formatting import counted, format_money
from .model import PriceBook, SettlementPolicy
from .periods import LAST_YEAR, next_month, parse_period

# Entry kinds, with what each records. The ledger stores this table, so that a later release can add
# kinds (e.g. a resource pack purchase) with a migration that only inserts rows.
ACCOUNT_OPENED = "account-opened"
SERVICE_ACTIVATED = "service-activated"
TERMS_ACCEPTED = "terms-accepted"
BILL_ISSUED = "bill-issued"
DEBIT_SCHEDULED = "debit-scheduled"
DEBIT = "debit"
TOP_UP = "top-up"
FREEZE = "freeze"
FREEZE_FAILED = "freeze-failed"
FREEZE_RELEASED = "freeze-released"
SUSPENDED = "suspended"
RESUMED = "resumed"
PACK_PURCHASE = "pack-purchase"
PACK_USE = "pack-use"
PACK_EXPIRED = "pack-expired"
SUPPLEMENTARY_INVOICE = "supplementary-invoice"
CREDIT_NOTE = "credit-note"

ENTRY_KINDS: Mapping[str, str] = {
    ACCOUNT_OPENED: "the account was created",
    SERVICE_ACTIVATED: "a service was activated by accepting its terms of service",
    TERMS_ACCEPTED: "a newer version of a service's terms of service was accepted",
    BILL_ISSUED: "a period's bill was recorded (the fee is taken by its debit)",
    DEBIT_SCHEDULED: "a bill's fee was scheduled for the policy's deduction window",
    DEBIT: "a bill's fee was taken from the balance",
    TOP_UP: "money was credited to the balance",
    FREEZE: "part of the balance was held as a deposit",
    FREEZE_FAILED: "a deposit could not be held for lack of available balance",
    FREEZE_RELEASED: "a deposit was released",
    SUSPENDED: "the service was stopped",
    RESUMED: "the service was restarted",
    PACK_PURCHASE: "a resource pack was bought: its price was taken from the balance",
    PACK_USE: "units of a resource pack were used by a period's bill",
    PACK_EXPIRED: "a resource pack expired: the units left in it were lost",
    SUPPLEMENTARY_INVOICE: "a supplementary invoice billed usage a period's invoice missed: its amount was taken "
                           "from the balance",
    CREDIT_NOTE: "a credit note reduced what an invoice charged: its amount was credited to the balance (nothing, "
                 "when it cancels a debit not yet taken)",
}

SUSPEND_SERVICE = "suspend-service"
BALANCE_NOT_NEGATIVE = "balance-not-negative"
FREEZE_SUCCEEDS = "freeze-succeeds"

ZERO = Decimal(0)
# Sums of exact amounts stay exact whatever the caller's decimal context; a result that would need
# rounding raises instead of losing digits.
_EXACT = EXACT
add = _EXACT.add
subtract = _EXACT.subtract


# -- when --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """The moments a period's settlement turns on, as aware datetimes in the policy's time zone."""

    period: str
    time_zone: str
    start: datetime  # the period begins
    end: datetime  # the period has ended (exclusive bound)
    issue: datetime  # the bill is issued (start of the issue day)
    deduction_opens: datetime  # the fee may be taken from here ...
    deduction_closes: datetime  # ... until here (exclusive: the day after the window's last day)

    @property
    def deduction_last_day(self) -> date:
        return (self.deduction_closes - timedelta(days=1)).date()


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def schedule(policy: SettlementPolicy, period: str) -> Schedule:
    first = parse_period(period)
    after = next_month(first)
    zone = ZoneInfo(policy.time_zone)
    last_day = after.replace(day=policy.deduction_last_day)
    return Schedule(
        period=period,
        time_zone=policy.time_zone,
        start=_local_midnight(first, zone),
        end=_local_midnight(after, zone),
        issue=_local_midnight(after.replace(day=policy.bill_issue_day), zone),
        deduction_opens=_local_midnight(after.replace(day=policy.deduction_first_day), zone),
        deduction_closes=_local_midnight(last_day + timedelta(days=1), zone),
    )


def check_settleable(policy: SettlementPolicy, period: str, at: datetime) -> Schedule:
    """The period's schedule, or PeriodError when the period has not ended as of `at`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("settlement times must be timezone-aware")
    when = schedule(policy, period)
    if at < when.end:
        local = at.astimezone(when.end.tzinfo)
        raise PeriodError(
            f"period {period} has not ended yet in {policy.time_zone}: it ends at "
            f"{when.end.isoformat()} and the settlement time is {local.isoformat(timespec='seconds')}; "
            "a period can be settled only once it is over")
    return when


# -- the deposit freeze ------------------------------------------------------------------------------


def payg_cost(category, units: int) -> Decimal:
    """`units` of one category priced pay-as-you-go by its tiers (no free quota, no packs)."""
    if not category.plain:
        from .price import pricer_for

        return pricer_for(category).cost(units)
    if category.tier_mode == "volume":
        for tier in category.tiers:
            if tier.up_to is None or units <= tier.up_to:
                return _EXACT.multiply(tier.unit_price, units)
        raise ValueError(f"category {category.id} has no unbounded last tier")
    amount, lower, left = ZERO, 0, units
    for tier in category.tiers:
        span = left if tier.up_to is None else min(left, tier.up_to - lower)
        amount = add(amount, _EXACT.multiply(tier.unit_price, span))
        left -= span
        if not left or tier.up_to is None:
            break
        lower = tier.up_to
    return amount


def list_price_cost(book: PriceBook, bill) -> Decimal:
    """The period's list-price cost: every billable unit on the bill priced pay-as-you-go by the price
    book, as if there were no free quota and no packs. Exact (not rounded)."""
    from .rating import line_figures

    total = ZERO
    categories = book.categories
    for category_id, calls, amount in line_figures(bill):
        category = categories[category_id]
        # A percentage is priced on transaction amounts, not units: its list price is what the bill priced.
        total = add(total, amount if category.model == "percentage" else payg_cost(category, calls))
    return total


def freeze_amount(policy: SettlementPolicy, list_cost: Decimal) -> Decimal | None:
    """The deposit to hold after settling a period whose list-price cost is `list_cost`, rounded once
    as the policy rounds bills; None when the policy holds no deposit."""
    percent = policy.deposit_freeze_percent
    if percent is None:
        return None
    exact = _EXACT.multiply(list_cost, _decimal(percent)).scaleb(-2, context=_EXACT)
    return policy.rounding(exact)


def _decimal(value) -> Decimal:
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def freeze_basis(policy: SettlementPolicy, list_cost: Decimal, currency: str) -> str:
    """How a deposit was worked out, for the ledger entry that holds it (or fails to)."""
    percent = format(_decimal(policy.deposit_freeze_percent).normalize(), "f")
    return f"{percent}% of the list-price cost {format_money(list_cost, currency)}"


# -- state and changes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Terms:
    """What a settlement policy says about arrears, captured with each debit so that the debit (and
    later top-ups) can be applied without the rules at hand."""

    arrears_action: str  # "suspend-service" | "none"
    resume_when: str  # "balance-not-negative" | "freeze-succeeds"
    freeze: Decimal | None = None  # the deposit to hold once the debit is taken
    freeze_basis: str = ""  # how the deposit was computed, for the entry's reason

    @classmethod
    def of(cls, policy: SettlementPolicy, freeze: Decimal | None = None, basis: str = "") -> Terms:
        if cls is Terms:
            return _terms(policy.arrears_action, policy.resume_when, freeze, basis)
        return cls(policy.arrears_action, policy.resume_when, freeze, basis)


@dataclass(frozen=True, slots=True)
class ServiceState:
    service: str
    suspended: bool = False
    frozen: Decimal = ZERO  # the deposit held for this service
    frozen_period: str | None = None  # the period whose settlement froze it
    pending_freeze: Decimal | None = None  # a freeze that failed and is retried by top-ups
    pending_period: str | None = None
    arrears_action: str | None = None  # the terms of the latest debit (None before the first)
    resume_when: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """An account's money and its services' states."""

    currency: str
    balance: Decimal
    frozen: Decimal  # all deposits held; available = balance - frozen
    services: Mapping[str, ServiceState]

    @property
    def available(self) -> Decimal:
        return subtract(self.balance, self.frozen)


@dataclass(frozen=True, slots=True)
class Change:
    """One ledger entry to append: a change to the balance and/or the deposit, with its reason."""

    kind: str
    reason: str
    service: str | None = None
    period: str | None = None
    amount: Decimal = ZERO  # added to the balance (negative for a debit)
    frozen: Decimal = ZERO  # added to the deposit held
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    changes: tuple[Change, ...]
    position: Position


# Fast constructors of the records above for the per-account paths, here and in the ledger's (a frozen
# dataclass's __init__ stores each field through object.__setattr__): the same objects as the class's.
new_change = _change = builder(Change)
new_state = _state = builder(ServiceState)
new_position = _position = builder(Position)
_outcome, _terms = builder(Outcome), builder(Terms)


def _evolve(state: ServiceState, **changes) -> ServiceState:
    """`dataclasses.replace(state, **changes)` at a fraction of its cost: every other field copied."""
    return _state(**{name: changes[name] if name in changes else getattr(state, name) for name in state.__slots__})


def in_good_standing(balance: Decimal, state: ServiceState) -> bool:
    if balance < 0:
        return False
    return not (state.resume_when == FREEZE_SUCCEEDS and state.pending_freeze is not None)


class _Builder:
    """Accumulates changes while keeping the position they lead to."""

    def __init__(self, position: Position):
        self.currency = position.currency
        self.balance, self.frozen = position.balance, position.frozen
        self.services = dict(position.services)
        self.changes: list[Change] = []

    def money(self, value: Decimal) -> str:
        return format_money(value, self.currency)

    def append(self, change: Change) -> None:
        self.balance = add(self.balance, change.amount)
        self.frozen = add(self.frozen, change.frozen)
        self.changes.append(change)

    def try_freeze(self, state: ServiceState, amount: Decimal, period: str, why: str) -> ServiceState:
        available = subtract(self.balance, self.frozen)
        if not amount:
            # Holding nothing cannot fail and changes nothing: no entry.
            return _evolve(state, pending_freeze=None, pending_period=None)
        if available >= amount:
            self.append(_change(FREEZE, f"deposit of {self.money(amount)} held{why}", state.service, period,
                               frozen=amount))
            return _evolve(state, frozen=add(state.frozen, amount), frozen_period=period, pending_freeze=None,
                           pending_period=None)
        self.append(_change(FREEZE_FAILED, f"deposit of {self.money(amount)} could not be held{why}: only "
                           f"{self.money(available)} available", state.service, period))
        return _evolve(state, pending_freeze=amount, pending_period=period)

    def standing(self, state: ServiceState, cause: str) -> ServiceState:
        """Suspend or resume the service as its terms say, after a change to the balance or deposit."""
        good = in_good_standing(self.balance, state)
        if not state.suspended and not good and state.arrears_action == SUSPEND_SERVICE:
            if self.balance < 0:
                why = f"in arrears: the balance is {self.money(self.balance)} after {cause}"
            else:
                # Not in good standing with a balance of zero or more: only a failed deposit hold does that.
                assert state.pending_freeze is not None
                why = (f"the deposit of {self.money(state.pending_freeze)} for {state.pending_period} could not "
                       f"be held after {cause}")
            until = ("until a top-up brings the balance to zero or more" if state.resume_when == BALANCE_NOT_NEGATIVE
                     else "until a top-up lets the deposit be held")
            self.append(_change(SUSPENDED, f"{why}; suspended {until}", state.service))
            return _evolve(state, suspended=True)
        if state.suspended and good:
            held = " and the deposit is held" if state.resume_when == FREEZE_SUCCEEDS else ""
            self.append(_change(RESUMED, f"the balance is {self.money(self.balance)} after {cause}{held}",
                               state.service))
            return _evolve(state, suspended=False)
        return state

    def outcome(self) -> Outcome:
        return _outcome(tuple(self.changes), _position(self.currency, self.balance, self.frozen, dict(self.services)))


def apply_debit(position: Position, service: str, period: str, total: Decimal, terms: Terms,
                invoice: str, note: str = "") -> Outcome:
    """Take a bill's fee; then release the service's previous deposit and hold the new one (when the
    policy freezes one); then suspend or resume the service as the terms say."""
    b = _Builder(position)
    state = b.services.get(service) or _state(service)
    b.append(_change(DEBIT, f"invoice {invoice} for {period}: {b.money(total)}{note}", service, period,
                    amount=subtract(ZERO, total), ref=invoice))  # not -total: a zero bill debits 0.00, not -0.00
    if state.frozen:
        b.append(_change(FREEZE_RELEASED, f"deposit of {b.money(state.frozen)} held after {state.frozen_period} "
                        f"released on settling {period}", service, period, frozen=-state.frozen))
    # The terms as of this debit; the deposit released; a pending freeze of an earlier period replaced by
    # this period's estimate.
    frozen, frozen_period = (ZERO, None) if state.frozen else (state.frozen, state.frozen_period)
    state = _evolve(state, arrears_action=terms.arrears_action, resume_when=terms.resume_when, frozen=frozen,
                    frozen_period=frozen_period, pending_freeze=None, pending_period=None)
    if terms.freeze is not None:
        state = b.try_freeze(state, terms.freeze, period, f" for {period}" + (f" ({terms.freeze_basis})"
                                                                             if terms.freeze_basis else ""))
    state = b.standing(state, f"invoice {invoice}")
    b.services[service] = state
    return b.outcome()


def apply_top_up(position: Position, amount: Decimal, reference: str | None = None) -> Outcome:
    """Credit the balance; retry every pending deposit freeze (services in name order); resume the
    services that are back in good standing."""
    if amount <= 0:
        raise ValueError("a top-up must be more than zero")
    b = _Builder(position)
    what = f"top-up of {b.money(amount)}"
    b.append(_change(TOP_UP, what + (f" (reference {reference})" if reference else ""), amount=amount,
                    ref=reference))
    for name in sorted(b.services):
        state = b.services[name]
        if state.pending_freeze is not None:
            assert state.pending_period is not None  # the two are set together (try_freeze)
            state = b.try_freeze(state, state.pending_freeze, state.pending_period, f" for {state.pending_period}"
                                 f" (retried after the {what})")
        b.services[name] = b.standing(state, f"the {what}")
    return b.outcome()


# -- resource packs ----------------------------------------------------------------------------------
#
# A pack is bought at a moment and expires a number of calendar months later (exclusive). Usage is
# counted per month, so the calls of a month made before the purchase, or after the expiry, cannot be
# told from the others: a pack serves every period it overlaps, wholly. So a pack bought on the 10th
# covers its whole first month, and one expiring on the 10th still covers its last month; its units
# left are lost once every period it serves is settled (not before: a month settled late still finds
# them). A period's bill takes pack units only once the earlier periods the pack serves are settled,
# so the order periods are settled in never changes the money.


def pack_expiry(bought_at: datetime, months: int, time_zone: str) -> datetime:
    """When a pack bought at `bought_at` stops being usable: `months` calendar months later at the
    same local time in `time_zone`. A day the month lacks becomes its last day (a one-month pack
    bought on 31 January expires on the last day of February)."""
    if months < 1:
        raise ValueError(f"a pack is valid for at least one month, not {months}")
    zone = ZoneInfo(time_zone)
    local = bought_at.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    if year > LAST_YEAR:
        raise PeriodError(f"a pack bought on {local.date().isoformat()} and valid for {months:,} months would "
                          f"expire in {year}, after the last period that can be billed ({LAST_YEAR}-12)")
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day, fold=0)


def pack_serves(bought_at: datetime, expires_at: datetime, when: Schedule) -> bool:
    """Whether a pack's units may be used for the calls of a period: it overlaps the period."""
    return bought_at < when.end and expires_at > when.start


def last_period_served(expires_at: datetime, time_zone: str) -> str:
    """The last period a pack serves: the one its final moment of validity falls in."""
    local = (expires_at - timedelta(microseconds=1)).astimezone(ZoneInfo(time_zone))
    return f"{local.year:04d}-{local.month:02d}"


def rating_expiry(expires_at: datetime, time_zone: str) -> date:
    """The expiry as `rating.PackBalance.expires` takes it: the first local day on which the pack
    cannot be used at all (exclusive), so that a pack still valid for part of a period's first day
    is not taken for one that expired before the period."""
    local = expires_at.astimezone(ZoneInfo(time_zone))
    day = local.date()
    return day if local.replace(tzinfo=None) == datetime(day.year, day.month, day.day) else day + timedelta(days=1)


def apply_pack_purchase(position: Position, service: str, period: str, price: Decimal, pack_id: str,
                        what: str, note: str = "") -> Outcome:
    """Take a pack's price from the balance when it is bought. A pack is prepaid: the available
    balance (what deposits do not hold) must cover it, so buying one never puts an account in arrears
    nor touches a deposit, and the service's standing does not change."""
    if price < 0:
        raise ValueError("a pack's price cannot be negative")
    if position.available < price:
        raise ValueError(f"only {format_money(position.available, position.currency)} available")
    b = _Builder(position)
    b.append(_change(PACK_PURCHASE, f"{what} bought for {b.money(price)}{note}", service, period,
                    amount=subtract(ZERO, price), ref=pack_id))
    return b.outcome()


def pack_use(service: str, period: str, pack_id: str, category: str, used: int, left: int, unit: str) -> Change:
    """The entry of a pack's units used by a period's bill (no money moves: the pack was paid for)."""
    return _change(PACK_USE, f"pack {pack_id} ({category}): {counted(used, unit)} used for {period}; {left:,} left",
                  service, period, ref=pack_id)


def pack_expired(service: str, period: str, pack_id: str, category: str, left: int, unit: str,
                 expired: str) -> Change:
    """The entry of the units a pack still held when it expired, now lost."""
    return _change(PACK_EXPIRED, f"pack {pack_id} ({category}) expired {expired}: {left:,} unused {unit}{'' if left == 1 else 's'} "
                  "lost", service, period, ref=pack_id)


# -- corrections -------------------------------------------------------------------------------------


def apply_supplementary(position: Position, service: str, period: str, amount: Decimal, number: str,
                        invoice: str) -> Outcome:
    """Take a supplementary invoice's amount (usage the period's invoice missed); then suspend the
    service if that puts the account out of good standing, as the terms of its latest debit say."""
    b = _Builder(position)
    state = b.services.get(service) or _state(service)
    b.append(_change(SUPPLEMENTARY_INVOICE, f"supplementary invoice {number} to invoice {invoice} for {period}: "
                    f"{b.money(amount)}", service, period, amount=subtract(ZERO, amount), ref=number))
    b.services[service] = b.standing(state, f"supplementary invoice {number}")
    return b.outcome()


def apply_credit_note(position: Position, service: str, period: str, amount: Decimal, number: str,
                      invoice: str, why: str) -> Outcome:
    """Credit a credit note's `amount` to the balance (it may be negative: a void that cancels a
    scheduled debit takes back what earlier credit notes gave); then resume the service if that
    brings it back in good standing."""
    b = _Builder(position)
    state = b.services.get(service) or _state(service)
    b.append(_change(CREDIT_NOTE, f"credit note {number} to invoice {invoice} for {period}: {why}", service, period,
                    amount=amount, ref=number))
    b.services[service] = b.standing(state, f"credit note {number}")
    return b.outcome()
