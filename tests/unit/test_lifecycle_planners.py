"""Every worked example of ALLUSE_RULES §5, to the cent, on the pure planners."""

from __future__ import annotations

from datetime import date

import pytest

from alluse.domain.accounts import AccountKind, Allocation, CashSnapshot
from alluse.domain.errors import InvalidInput
from alluse.domain.lifecycle import (
    AccountState,
    EarmarkPurpose,
    LifecycleConfig,
    Outcome,
    SurplusFigures,
    is_quarter_end,
    plan_gen_fork,
    plan_merge,
    plan_reinvestment,
    plan_rev_fork,
    quarter_of,
)
from alluse.domain.money import apply_bps

CFG = LifecycleConfig()


def sleeve(kind: AccountKind, cash: int, base: int, unpaid_tax: int = 0, positions: int = 0, earmarked: int = 0,
           collateral: int = 0, tax_unrealized: int = 0) -> AccountState:  # fmt: skip
    snap = CashSnapshot(f"{kind.value} test", kind, cash, positions, collateral, earmarked)
    return AccountState(1, snap, SurplusFigures(cash + positions, base, unpaid_tax, tax_unrealized), 10)


def member(aid: int, kind: AccountKind, cash: int, positions: int = 0) -> AccountState:
    """An account of the FORK group A1F1 about to merge."""
    return AccountState(aid, CashSnapshot(f"{kind.value} A1F1", kind, cash, positions), None, 3)


def test_gen_fork_worked_example() -> None:
    # Base $100,000, NAV and cash $175,000, realized short-term gains $75,000 at 30 % → unpaid tax $22,500.
    unpaid = apply_bps(7_500_000, 3000)
    assert unpaid == 2_250_000
    acc = sleeve(AccountKind.GEN, 17_500_000, 10_000_000, unpaid)
    assert acc.figures.surplus == 5_250_000
    plan = plan_gen_fork(acc, CFG)
    assert plan is not None and plan.outcome is Outcome.APPLY
    assert plan.amount == 5_250_000
    assert plan.legs == {AccountKind.GEN: 2_625_000, AccountKind.COM: 2_625_000}
    # Each new sleeve's 5 % buffer, and what the parent keeps: base + tax reserve.
    assert [apply_bps(v, 500) for v in plan.legs.values()] == [131_250, 131_250]
    assert acc.cash.cash - plan.amount == 12_250_000 == 10_000_000 + unpaid
    assert plan.brokerage_needed == 2


def test_gen_fork_amount_is_capped_by_deployable_cash() -> None:
    # Surplus $90,000 but only $60,000 deployable (earmarks hold the rest): fork $60,000.
    acc = sleeve(AccountKind.GEN, 20_000_000, 10_000_000, 1_000_000, earmarked=12_990_000)
    assert acc.cash.deployable_cash == 20_000_000 - 1_000_000 - 12_990_000
    plan = plan_gen_fork(acc, CFG)
    assert plan is not None and plan.amount == 6_010_000 == acc.cash.deployable_cash
    assert sum(plan.legs.values()) == plan.amount


def test_gen_fork_odd_cent_split_conserves() -> None:
    acc = sleeve(AccountKind.GEN, 30_000_001, 20_000_000, 3_000_000)
    plan = plan_gen_fork(acc, CFG)
    assert plan is not None and plan.amount == 7_000_001
    assert plan.legs[AccountKind.GEN] + plan.legs[AccountKind.COM] == 7_000_001


def test_gen_fork_waits_when_surplus_sits_in_positions() -> None:
    acc = sleeve(AccountKind.GEN, 3_000_000, 10_000_000, 2_250_000, positions=14_500_000)
    assert acc.figures.surplus == 5_250_000
    plan = plan_gen_fork(acc, CFG)
    assert plan is not None and plan.outcome is Outcome.WAIT and plan.amount == 0
    # Deployable: $30,000 cash − $8,750 buffer (5 % of $175,000 NAV).
    assert "sits in open positions" in plan.reason and "deployable cash $21,250.00" in plan.reason


def test_gen_fork_waits_when_pool_is_short() -> None:
    acc = sleeve(AccountKind.GEN, 17_500_000, 10_000_000, 2_250_000)
    plan = plan_gen_fork(acc, CFG, pool_free=1)
    assert plan is not None and plan.outcome is Outcome.WAIT
    assert "pool is short" in plan.reason and "needs 2" in plan.reason and "has 1" in plan.reason
    assert plan_gen_fork(acc, CFG, pool_free=2).outcome is Outcome.APPLY  # type: ignore[union-attr]


def test_below_threshold_no_fork() -> None:
    acc = sleeve(AccountKind.GEN, 17_249_999, 10_000_000, 2_250_000)
    assert acc.figures.surplus == 4_999_999
    assert plan_gen_fork(acc, CFG) is None
    assert plan_gen_fork(sleeve(AccountKind.REV, 17_500_000, 10_000_000), CFG) is None  # only a Gen-Acc


def test_rev_fork_moves_500k_into_a_40_30_30_group() -> None:
    acc = sleeve(AccountKind.REV, 130_000_000, 30_000_000, 15_000_000)
    plan = plan_rev_fork(acc, CFG)
    assert plan is not None and plan.outcome is Outcome.APPLY and plan.amount == 50_000_000
    assert plan.legs == {AccountKind.GEN: 20_000_000, AccountKind.REV: 15_000_000, AccountKind.COM: 15_000_000}
    assert plan.brokerage_needed == 3
    assert plan_rev_fork(acc, CFG, pool_free=2).outcome is Outcome.WAIT  # type: ignore[union-attr]
    waiting = plan_rev_fork(sleeve(AccountKind.REV, 10_000_000, 30_000_000, 0, positions=80_000_000), CFG)
    assert waiting is not None and waiting.outcome is Outcome.WAIT
    assert plan_rev_fork(sleeve(AccountKind.REV, 79_999_999, 30_000_000, 0), CFG) is None


def test_merge_at_threshold_moves_all_cash() -> None:
    members = [member(5, AccountKind.GEN, 30_000_000), member(6, AccountKind.COM, 20_000_000)]
    plan = plan_merge(3, "A1F1", members, (4, "Com-Acc A1-COM"), CFG)
    assert plan is not None and plan.outcome is Outcome.APPLY
    assert plan.moves == {5: 30_000_000, 6: 20_000_000} and plan.combined_nav == 50_000_000
    assert plan_merge(3, "A1F1", [member(5, AccountKind.GEN, 49_999_999)], (4, "c"), CFG) is None
    # Positions count towards the threshold; only cash moves.
    held = plan_merge(3, "A1F1", [member(5, AccountKind.GEN, 40_000_000, positions=10_000_000)], (4, "c"), CFG)
    assert held is not None and held.combined_nav == 50_000_000 and held.moves == {5: 40_000_000}
    orphan = plan_merge(3, "A1F1", members, None, CFG)
    assert orphan is not None and orphan.outcome is Outcome.WAIT and "no active ancestor" in orphan.reason


def test_reinvestment_worked_example_rev_acc() -> None:
    # Quarter realized gain $40,000 → tax reserve $12,000 → $28,000 → contracts $21,000, LEAPS $7,000.
    acc = sleeve(AccountKind.REV, 11_500_000, 7_500_000)
    plan = plan_reinvestment(acc, 4_000_000, "2026Q1", CFG)
    assert plan is not None
    assert (plan.tax_reserve, plan.reinvestable, plan.buffer_restore) == (1_200_000, 2_800_000, 0)
    assert plan.earmarks == {EarmarkPurpose.CONTRACTS: 2_100_000, EarmarkPurpose.LEAPS: 700_000}
    assert plan.all_earmarks[EarmarkPurpose.TAX_RESERVE] == 1_200_000
    assert plan.not_earmarked == 0 and not plan.still_below_buffer


def test_reinvestment_com_acc_shares_and_pre_tax_setting() -> None:
    acc = sleeve(AccountKind.COM, 11_500_000, 7_500_000)
    plan = plan_reinvestment(acc, 4_000_000, "2026Q1", CFG)
    assert plan is not None and plan.earmarks == {EarmarkPurpose.SHARES: 2_100_000, EarmarkPurpose.LEAPS: 700_000}
    pre = plan_reinvestment(acc, 4_000_000, "2026Q1", LifecycleConfig(reinvest_pre_tax=True))
    assert pre is not None and pre.tax_reserve == 1_200_000 and pre.reinvestable == 4_000_000
    assert pre.earmarks == {EarmarkPurpose.SHARES: 3_000_000, EarmarkPurpose.LEAPS: 1_000_000}


def test_reinvestment_restores_the_buffer_first() -> None:
    # Cash $10,000 against NAV $100,000: buffer $5,000; positions $90,000; the $4,000 gain after tax...
    acc = sleeve(AccountKind.REV, 1_000_000, 9_000_000, positions=9_000_000, earmarked=200_000)
    # room = 10,000 − 5,000 − 2,000 earmarked − 1,200 tax = 1,800: no restore needed, 1,800 fits.
    plan = plan_reinvestment(acc, 400_000, "2026Q2", CFG)
    assert plan is not None and plan.buffer_restore == 0
    assert sum(plan.earmarks.values()) == 180_000 and plan.not_earmarked == 280_000 - 180_000
    short = sleeve(AccountKind.REV, 600_000, 9_000_000, positions=9_400_000)
    # buffer 5,000; room = 6,000 − 5,000 − 1,200 tax = −200: $200 of the reinvestable is held back, which
    # adds no cash, so the account is still $200 short after the plan; nothing is earmarked.
    p2 = plan_reinvestment(short, 400_000, "2026Q2", CFG)
    assert p2 is not None and p2.buffer_restore == 20_000 and p2.earmarks == {}
    assert p2.still_below_buffer and p2.buffer_shortfall == 20_000
    assert p2.not_earmarked == 280_000
    deep = sleeve(AccountKind.COM, 100_000, 9_000_000, positions=9_900_000)
    p3 = plan_reinvestment(deep, 10_000, "2026Q2", CFG)
    assert p3 is not None and p3.buffer_restore == 7_000 and p3.still_below_buffer


def test_a_reinvestment_that_cannot_restore_the_buffer_says_so() -> None:
    # The review's case: cash $3,100 against a buffer of $3,855 (NAV $77,100), a quarter gain of
    # $1,978.57: tax reserve $593.57, reinvestable $1,385.00. Nothing restores the buffer.
    acc = sleeve(AccountKind.REV, 310_000, 7_000_000, positions=7_400_000)
    assert acc.cash.cash_buffer == 385_500
    plan = plan_reinvestment(acc, 197_857, "2026Q4", CFG)
    assert plan is not None and (plan.tax_reserve, plan.reinvestable) == (59_357, 138_500)
    assert plan.still_below_buffer and plan.earmarks == {}
    assert plan.buffer_shortfall == 385_500 + 59_357 - 310_000  # buffer and tax reserve against cash
    assert plan.buffer_restore == 134_857 and plan.not_earmarked == 138_500  # held back: no cash added
    assert "shortfall left is $1,348.57" in plan.reason


def test_no_reinvestment_without_gain_or_for_gen() -> None:
    acc = sleeve(AccountKind.REV, 11_500_000, 7_500_000)
    assert plan_reinvestment(acc, 0, "2026Q1", CFG) is None
    assert plan_reinvestment(acc, -100, "2026Q1", CFG) is None
    assert plan_reinvestment(sleeve(AccountKind.GEN, 11_500_000, 7_500_000), 4_000_000, "2026Q1", CFG) is None


def test_quarters() -> None:
    assert [is_quarter_end(date(2026, m, d)) for m, d in ((3, 31), (6, 30), (9, 30), (12, 31), (6, 29))] == [
        True, True, True, True, False]  # fmt: skip
    assert quarter_of(date(2026, 11, 21)) == "2026Q4" and quarter_of(date(2026, 1, 1)) == "2026Q1"


def test_configuration_is_validated() -> None:
    with pytest.raises(InvalidInput, match="Gen-Acc and a Com-Acc only"):
        LifecycleConfig(gen_fork_split=Allocation(4000, 3000, 3000))
    with pytest.raises(InvalidInput, match="must be positive"):
        LifecycleConfig(merge_threshold=0)
    with pytest.raises(InvalidInput, match="may not exceed"):
        LifecycleConfig(rev_fork_amount=60_000_000)
    custom = LifecycleConfig(gen_fork_threshold=1_000_000, gen_fork_split=Allocation(6000, 0, 4000))
    plan = plan_gen_fork(sleeve(AccountKind.GEN, 3_000_000, 1_000_000), custom)
    assert plan is not None and plan.legs == {AccountKind.GEN: 1_200_000, AccountKind.COM: 800_000}
