"""Settlement decisions without a database: schedules, the deposit freeze, debits, top-ups, standing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ratecard
from ratecard import settlement as S
from ratecard.errors import PeriodError
from ratecard.rating import rate

from conftest import TOY_PRICING, TOY_SETTLEMENT, write_rule_set

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return ratecard.load_rules(write_rule_set(tmp_path_factory.mktemp("rules") / "toy"))


# -- when ---------------------------------------------------------------------------------------------


def test_schedule_follows_the_policy_days_and_time_zone(toy):
    policy = toy.latest[2]
    when = S.schedule(policy, "2024-03")
    assert when.start == datetime(2024, 3, 1, tzinfo=BERLIN)
    # Berlin is on summer time by April 1st: the period ends at 22:00 UTC, not 23:00.
    assert when.end.astimezone(timezone.utc) == datetime(2024, 3, 31, 22, 0, tzinfo=timezone.utc)
    assert when.issue == datetime(2024, 4, 2, tzinfo=BERLIN)
    assert when.deduction_opens == datetime(2024, 4, 5, tzinfo=BERLIN)
    assert when.deduction_closes == datetime(2024, 4, 10, tzinfo=BERLIN)
    assert when.deduction_last_day == date(2024, 4, 9)
    december = S.schedule(policy, "2024-12")
    assert december.deduction_opens == datetime(2025, 1, 5, tzinfo=BERLIN)


def test_a_period_can_be_settled_only_once_it_has_ended_in_the_policy_zone(toy):
    policy = toy.latest[2]
    end = datetime(2024, 4, 1, tzinfo=BERLIN)
    with pytest.raises(PeriodError, match=r"2024-03 has not ended yet in Europe/Berlin"):
        S.check_settleable(policy, "2024-03", end - timedelta(microseconds=1))
    # 23:30 UTC on March 31st is already April in Berlin.
    assert S.check_settleable(policy, "2024-03", datetime(2024, 3, 31, 22, 30, tzinfo=timezone.utc)).period == "2024-03"
    assert S.check_settleable(policy, "2024-03", end).end == end


# -- the deposit freeze ---------------------------------------------------------------------------------

FREE_PRICING = TOY_PRICING.replace("tier_mode: volume\n", "tier_mode: volume\nfree_quota: { units: 50 }\n")
FREEZE_SETTLEMENT = TOY_SETTLEMENT.replace(
    "arrears: { action: suspend-service, resume_when: balance-not-negative }",
    "deposit_freeze: { percent: 120 }\narrears: { action: suspend-service, resume_when: freeze-succeeds }")


@pytest.fixture(scope="module")
def frozen_toy(tmp_path_factory):
    return ratecard.load_rules(write_rule_set(tmp_path_factory.mktemp("rules") / "freeze", pricing=FREE_PRICING,
                                            settlement=FREEZE_SETTLEMENT))


def test_list_price_cost_ignores_free_quota_and_packs(frozen_toy):
    book, _, policy = frozen_toy.latest
    bill = rate(frozen_toy, {"RenderWidget": 200, "LookupGadget": 20}, "2024-03")
    # Billed: widgets 150 after the free 50 → tier 2, 7.50; gadgets all free.
    assert bill.total == D("7.50")
    # List price: 200 widgets at tier 2 (0.05) = 10.00; 20 gadgets at tier 2 (1.25) = 25.00.
    assert S.list_price_cost(book, bill) == D("35.00")
    assert S.freeze_amount(policy, D("35.00")) == D("42.00")
    assert S.freeze_amount(toy_policy_without_freeze(frozen_toy), D("35.00")) is None


def toy_policy_without_freeze(rules):
    from dataclasses import replace

    return replace(rules.latest[2], deposit_freeze_percent=None)


def test_graduated_list_price_and_freeze_rounding(frozen_toy):
    from dataclasses import replace

    widgets = replace(frozen_toy.latest[0].categories["widgets"], tier_mode="graduated")
    # 100 × 0.10 + 900 × 0.05 + 5 × 0.01
    assert S.payg_cost(widgets, 1005) == D("55.05")
    assert S.payg_cost(widgets, 0) == D("0")
    policy = frozen_toy.latest[2]  # quantum 0.01, half-even
    assert S.freeze_amount(policy, D("0.0125")) == D("0.02")  # 0.015 → half-even → 0.02
    assert S.freeze_amount(policy, D("0.0104")) == D("0.01")  # 0.01248 → 0.01
    assert S.freeze_amount(replace(policy, deposit_freeze_percent=D("112.5")), D("8")) == D("9.00")


# -- debits, top-ups and standing -----------------------------------------------------------------------

PAYG = S.Terms("suspend-service", "balance-not-negative")
RUN_ON = S.Terms("none", "balance-not-negative")


def freeze_terms(amount):
    return S.Terms("suspend-service", "freeze-succeeds", D(amount), "120% of the list price")


def position(balance="0", frozen="0", **services) -> S.Position:
    return S.Position("EUR", D(balance), D(frozen), services)


def kinds(outcome) -> list[str]:
    return [c.kind for c in outcome.changes]


def test_a_debit_into_arrears_suspends_and_a_top_up_resumes():
    out = S.apply_debit(position("10"), "svc", "2024-03", D("15.00"), PAYG, "INV-1")
    assert kinds(out) == ["debit", "suspended"]
    assert out.position.balance == D("-5.00")
    assert out.position.services["svc"].suspended
    assert "in arrears: the balance is -5.00 EUR after invoice INV-1" in out.changes[1].reason

    partial = S.apply_top_up(out.position, D("4.99"))
    assert kinds(partial) == ["top-up"]
    assert partial.position.services["svc"].suspended
    back = S.apply_top_up(partial.position, D("0.01"))
    assert kinds(back) == ["top-up", "resumed"]
    assert back.position.balance == D("0.00") and not back.position.services["svc"].suspended


def test_without_the_suspend_action_arrears_do_not_stop_the_service():
    out = S.apply_debit(position("10"), "svc", "2024-03", D("15.00"), RUN_ON, "INV-1")
    assert kinds(out) == ["debit"]
    assert not out.position.services["svc"].suspended


def test_freeze_releases_the_previous_deposit_and_holds_the_new_one():
    first = S.apply_debit(position("100"), "svc", "2024-01", D("7.50"), freeze_terms("12.00"), "INV-1")
    assert kinds(first) == ["debit", "freeze"]
    assert (first.position.balance, first.position.frozen, first.position.available) == (D("92.50"), D("12.00"),
                                                                                         D("80.50"))
    second = S.apply_debit(first.position, "svc", "2024-02", D("19.50"), freeze_terms("54.00"), "INV-2")
    assert kinds(second) == ["debit", "freeze-released", "freeze"]
    assert [c.frozen for c in second.changes] == [D(0), D("-12.00"), D("54.00")]
    assert (second.position.balance, second.position.frozen) == (D("73.00"), D("54.00"))


def test_a_failed_freeze_suspends_until_a_top_up_lets_it_succeed():
    state = S.ServiceState("svc", frozen=D("54.00"), frozen_period="2024-02")
    out = S.apply_debit(position("73.00", "54.00", svc=state), "svc", "2024-03", D("62.50"), freeze_terms("150.00"),
                        "INV-3")
    assert kinds(out) == ["debit", "freeze-released", "freeze-failed", "suspended"]
    svc = out.position.services["svc"]
    assert svc.suspended and svc.pending_freeze == D("150.00") and svc.frozen == 0
    assert "only 10.50 EUR available" in out.changes[2].reason
    # The balance is not negative, yet the service stays suspended: the freeze has not succeeded.
    not_enough = S.apply_top_up(out.position, D("100"))
    assert kinds(not_enough) == ["top-up", "freeze-failed"]
    assert not_enough.position.services["svc"].suspended
    enough = S.apply_top_up(not_enough.position, D("40"), reference="pay-7")
    assert kinds(enough) == ["top-up", "freeze", "resumed"]
    assert enough.changes[0].ref == "pay-7"
    assert (enough.position.balance, enough.position.frozen) == (D("150.50"), D("150.00"))
    assert enough.position.services["svc"].pending_freeze is None


def test_a_later_settlement_whose_freeze_succeeds_resumes_without_a_top_up():
    state = S.ServiceState("svc", suspended=True, pending_freeze=D("150"), pending_period="2024-03",
                           arrears_action="suspend-service", resume_when="freeze-succeeds")
    out = S.apply_debit(position("110.50", svc=state), "svc", "2024-04", D("5.00"), freeze_terms("6.00"), "INV-4")
    assert kinds(out) == ["debit", "freeze", "resumed"]


def test_a_zero_freeze_writes_nothing_and_cannot_fail():
    out = S.apply_debit(position("0"), "svc", "2024-01", D("0.00"), freeze_terms("0.00"), "INV-0")
    assert kinds(out) == ["debit"]
    assert out.position.services["svc"].pending_freeze is None


def test_top_ups_must_be_positive():
    with pytest.raises(ValueError):
        S.apply_top_up(position("0"), D("0"))


OPS = st.lists(st.one_of(
    st.tuples(st.just("debit"), st.decimals(min_value=0, max_value=500, places=2),
              st.one_of(st.none(), st.decimals(min_value=0, max_value=500, places=2)),
              st.sampled_from(["balance-not-negative", "freeze-succeeds"])),
    st.tuples(st.just("top-up"), st.decimals(min_value=D("0.01"), max_value=500, places=2)),
), max_size=25)


@settings(max_examples=300, deadline=None)
@given(start=st.decimals(min_value=0, max_value=300, places=2), ops=OPS)
def test_any_sequence_keeps_the_books_and_the_standing_consistent(start, ops):
    pos = position(str(start))
    total_amount, total_frozen = D(0), D(0)
    for n, op in enumerate(ops):
        if op[0] == "debit":
            _, amount, freeze, resume = op
            if freeze is None:
                resume = "balance-not-negative"  # the rules allow freeze-succeeds only with a freeze
            out = S.apply_debit(pos, "svc", f"p{n}", amount, S.Terms("suspend-service", resume, freeze), f"I{n}")
        else:
            out = S.apply_top_up(pos, op[1])
        ks = kinds(out)
        assert not ("suspended" in ks and "resumed" in ks)
        total_amount += sum(c.amount for c in out.changes)
        total_frozen += sum(c.frozen for c in out.changes)
        pos = out.position
        svc = pos.services.get("svc")
        # The books: the position is exactly the sum of the changes.
        assert pos.balance == start + total_amount
        assert pos.frozen == total_frozen >= 0
        if svc is not None:
            assert svc.frozen == pos.frozen
            # A deposit is only ever held out of money the account has.
            assert svc.frozen == 0 or pos.balance >= svc.frozen
            # Suspended exactly when out of good standing under the latest terms.
            assert svc.suspended == (not S.in_good_standing(pos.balance, svc))


def test_a_pack_expiring_after_the_last_billable_year_is_refused_not_a_crash():
    from datetime import datetime, timezone
    from ratecard.errors import PeriodError
    from ratecard.settlement import pack_expiry

    with pytest.raises(PeriodError, match="would expire in 10098"):
        pack_expiry(datetime(9998, 6, 1, tzinfo=timezone.utc), 1200, "UTC")



def test_a_service_state_evolved_is_the_state_replace_gives():
    # The per-account paths copy a state with a few fields changed without dataclasses.replace: every
    # other field must come along, whatever fields the record has.
    import dataclasses

    from ratecard.settlement import ServiceState, _evolve

    state = ServiceState("svc", True, D("12.50"), "2020-08", D("3"), "2020-09", "suspend", "balance")
    for name in (f.name for f in dataclasses.fields(ServiceState)):
        changed = {name: getattr(ServiceState("other"), name)}
        assert _evolve(state, **changed) == dataclasses.replace(state, **changed)
        assert type(_evolve(state, **changed)) is ServiceState
    assert _evolve(state) == state
