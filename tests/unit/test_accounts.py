import pytest
from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.accounts import (
    AccountKind,
    Allocation,
    CashSnapshot,
    check_cash_may_leave,
    check_cash_out,
)
from alluse.domain.errors import BufferShortfall, InvalidInput, RuleViolation


def test_default_allocation_worked_example() -> None:
    split = Allocation().split(25_000_000)
    assert split == {AccountKind.GEN: 10_000_000, AccountKind.REV: 7_500_000, AccountKind.COM: 7_500_000}


@given(st.integers(min_value=1, max_value=10**14), st.integers(0, 10_000), st.integers(0, 10_000))
def test_split_conserves_every_cent(amount: int, a: int, b: int) -> None:
    gen, rev = sorted((a, b))
    alloc = Allocation(gen, rev - gen, 10_000 - rev)
    assert sum(alloc.split(amount).values()) == amount


def test_allocation_must_sum_to_100() -> None:
    with pytest.raises(InvalidInput, match="must sum to 100"):
        Allocation(4000, 3000, 2000)


def test_deployable_cash_subtracts_buffer_collateral_and_earmarks() -> None:
    snap = CashSnapshot(
        "Gen-Acc A1-GEN",
        AccountKind.GEN,
        cash=10_000_000,
        positions_value=2_000_000,
        collateral=3_000_000,
        earmarked=500_000,
    )
    assert snap.nav == 12_000_000
    assert snap.cash_buffer == 600_000
    assert snap.deployable_cash == 10_000_000 - 600_000 - 3_000_000 - 500_000
    assert not snap.buffer_breached


def test_cash_out_beyond_deployable_names_account_buffer_and_shortfall() -> None:
    snap = CashSnapshot("Gen-Acc A1-GEN", AccountKind.GEN, cash=10_000_000)
    check_cash_out(snap, 9_500_000, "withdrawal")  # exactly the deployable cash
    with pytest.raises(BufferShortfall) as err:
        check_cash_out(snap, 9_500_001, "withdrawal")
    assert err.value.shortfall_cents == 1 and err.value.buffer_cents == 500_000
    assert "Gen-Acc A1-GEN" in str(err.value) and "$5,000.00" in str(err.value) and "$0.01" in str(err.value)
    check_cash_out(snap, 9_600_000, "withdrawal", override=True)  # an admin may eat into the buffer
    with pytest.raises(RuleViolation, match="holds only"):
        check_cash_out(snap, 10_000_001, "withdrawal", override=True)  # but never below zero


def test_com_acc_never_allows_withdrawals() -> None:
    with pytest.raises(RuleViolation, match="Com-Acc never allows withdrawals"):
        check_cash_may_leave(AccountKind.COM, "Com-Acc A1-COM", "withdrawal")
    check_cash_may_leave(AccountKind.REV, "Rev-Acc A1-REV", "withdrawal")
