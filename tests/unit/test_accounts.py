import pytest
from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.accounts import (
    AccountKind,
    Allocation,
    CashSnapshot,
    after_cash_out,
    check_cash_may_leave,
    check_cash_out,
    max_cash_out,
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


def test_cash_out_beyond_the_buffer_names_account_buffer_and_shortfall() -> None:
    # $50,000 cash and $50,000 in shares: after taking x the account must hold 5 % of (100,000 − x),
    # so at most 45,000 / 0.95 = $47,368.42 may leave (the §4 deployable column, $45,000, is for trades).
    snap = CashSnapshot("Gen-Acc A1-GEN", AccountKind.GEN, cash=5_000_000, positions_value=5_000_000)
    assert snap.deployable_cash == 4_500_000 and max_cash_out(snap) == 4_736_842
    check_cash_out(snap, 4_736_842, "withdrawal")
    with pytest.raises(BufferShortfall) as err:
        check_cash_out(snap, 4_736_843, "withdrawal")
    # What is left: cash $2,631.57 against a buffer of 5 % of $52,631.57 = $2,631.58.
    assert err.value.shortfall_cents == 1 and err.value.buffer_cents == 263_158
    assert "Gen-Acc A1-GEN" in str(err.value) and "$2,631.58" in str(err.value) and "$0.01" in str(err.value)
    check_cash_out(snap, 4_900_000, "withdrawal", override=True)  # an admin may eat into the buffer
    with pytest.raises(RuleViolation, match="holds only"):
        check_cash_out(snap, 5_000_001, "withdrawal", override=True)  # but never below zero


def test_the_reviews_sliced_withdrawals_gain_nothing_over_one() -> None:
    # $40,000 pure cash: $38,000 + $1,900 + $95 + $4.75 leaves $0.25; one withdrawal may take as much.
    snap = CashSnapshot("Gen-Acc A1-GEN", AccountKind.GEN, cash=4_000_000)
    for part in (3_800_000, 190_000, 9_500, 475):
        check_cash_out(snap, part, "withdrawal")
        snap = after_cash_out(snap, part)
    assert snap.cash == 25 and not snap.buffer_breached
    check_cash_out(CashSnapshot("Gen-Acc A1-GEN", AccountKind.GEN, cash=4_000_000), 3_999_975, "withdrawal")


def test_com_acc_never_allows_withdrawals() -> None:
    with pytest.raises(RuleViolation, match="Com-Acc never allows withdrawals"):
        check_cash_may_leave(AccountKind.COM, "Com-Acc A1-COM", "withdrawal")
    check_cash_may_leave(AccountKind.REV, "Rev-Acc A1-REV", "withdrawal")


# One intent on a snapshot: ("out", cents) a withdrawal or transfer out, ("in", cents) a transfer in,
# ("buy", cents) an order for shares (cash into positions), ("put", cents) a cash-secured put
# (collateral). Orders are judged on the §4 deployable column; cash-outs on the state they leave.
intent = st.tuples(st.sampled_from(["out", "in", "buy", "put"]), st.integers(1, 5_000_000))


def _effect(snap: CashSnapshot, kind: str, cents: int) -> CashSnapshot:
    if kind == "out":
        return after_cash_out(snap, cents)
    if kind == "in":
        return snap._replace(cash=snap.cash + cents)
    if kind == "buy":
        return snap._replace(cash=snap.cash - cents, positions_value=snap.positions_value + cents)
    return snap._replace(collateral=snap.collateral + cents)


def _accepted(snap: CashSnapshot, kind: str, cents: int) -> bool:
    if kind == "out":
        try:
            check_cash_out(snap, cents, "withdrawal")
        except (BufferShortfall, RuleViolation):
            return False
        return True
    return kind == "in" or cents <= snap.deployable_cash


@given(
    st.integers(0, 10_000_000),
    st.integers(0, 10_000_000),
    st.integers(0, 2_000),
    st.lists(intent, max_size=30),
)
def test_no_sequence_of_intents_reaches_a_state_one_intent_could_not(
    cash: int, positions: int, buffer_bps: int, intents: list[tuple[str, int]]
) -> None:
    snap = CashSnapshot("Gen-Acc A1-GEN", AccountKind.GEN, cash, positions, buffer_bps=buffer_bps)
    others, taken = snap, 0  # the same orders and transfers in, without the cash-outs
    for kind, cents in intents:
        if not _accepted(snap, kind, cents):
            continue
        if kind != "out" and snap.deployable_cash >= 0:
            assert _effect(snap, kind, cents).deployable_cash >= 0  # an accepted order keeps the buffer
        snap = _effect(snap, kind, cents)
        if kind == "out":
            assert snap.deployable_cash >= 0  # a cash-out never leaves the account short of its buffer
            taken += cents
        else:
            others = _effect(others, kind, cents)
    if taken:
        # Everything the cash-outs took, one intent may take after the same orders: slicing gains nothing.
        assert after_cash_out(others, taken) == snap
        check_cash_out(others, taken, "withdrawal")
        assert taken <= max_cash_out(others)
