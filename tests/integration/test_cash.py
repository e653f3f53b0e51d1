"""Deposits, withdrawals, transfers and reversals on both databases: exact, buffer-checked, atomic."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.audit import canonical_json
from alluse.domain.errors import BufferShortfall, Conflict, InvalidInput, NotFound, RuleViolation
from alluse.services import cash, groups
from alluse.services.trades import Fill, FillAction, record_fill
from alluse.services.verify import verify
from alluse.store.schema import audit_log, transfers
from alluse.views.accounts import account_tree
from tests.conftest import db_state


@pytest.fixture
def a1(engine: sa.Engine, portfolio: str) -> str:
    groups.open_group(engine, "t", portfolio, "open-a1", groups.group_opening(25_000_000))
    return portfolio


def _acc(engine: sa.Engine, name: str) -> dict:
    return next(a for g in account_tree(engine, "main")["groups"] for a in g["accounts"] if a["name"] == name)


def test_deposit_to_group_splits_by_allocation(engine: sa.Engine, a1: str) -> None:
    (r,) = cash.move_cash(engine, "t", a1, [("d1", cash.deposit("A1", 2_000_001))])
    assert sorted(leg["amount_cents"] for leg in r["legs"]) == [-2_000_001, 600_000, 600_001, 800_000]
    assert _acc(engine, "A1-GEN")["cash_cents"] == 10_800_000
    assert _acc(engine, "A1-COM")["cash_cents"] == 8_100_001  # Com-Acc takes the rounding residue
    assert _acc(engine, "A1-GEN")["base_capital_cents"] == 10_800_000
    assert verify(engine).ok


def _buy_shares(engine: sa.Engine, portfolio: str, account: str, dollars: int, key: str = "buy") -> None:
    """Put `dollars` of the account's cash into shares (NAV unchanged), so the buffer binds."""
    fill = Fill(account, FillAction.BTO, "ABC", dollars // 100, "100", 0, date(2026, 1, 5))
    record_fill(engine, "t", portfolio, key, fill)


def test_withdrawal_up_to_the_buffer_on_what_is_left_then_refused(engine: sa.Engine, a1: str) -> None:
    # Rev-Acc $75,000: $50,000 in shares, $25,000 cash. After taking x it must hold 5 % of 75,000 − x:
    # at most 21,250 / 0.95 = $22,368.42 may leave.
    _buy_shares(engine, a1, "A1-REV", 50_000)
    cash.move_cash(engine, "t", a1, [("w1", cash.withdrawal("A1-REV", 2_000_000))])
    cash.move_cash(engine, "t", a1, [("w2", cash.withdrawal("A1-REV", 236_842))])
    assert _acc(engine, "A1-REV")["cash_cents"] == 263_158 and _acc(engine, "A1-REV")["cash_buffer_cents"] == 263_158
    before = db_state(engine)
    with pytest.raises(BufferShortfall, match=r"Rev-Acc A1-REV .* cash buffer of \$2,631\.58 \(shortfall \$0\.01\)"):
        cash.move_cash(engine, "t", a1, [("w3", cash.withdrawal("A1-REV", 1))])
    assert db_state(engine) == before


def test_a_pure_cash_account_may_be_emptied_by_one_withdrawal_or_several(engine: sa.Engine, a1: str) -> None:
    # Slices that each took the old "deployable cash" ($95,000, $4,750, $237.50, $11.87 from $100,000)
    # leave $0.63; one withdrawal may take just as much (from the Rev-Acc, to compare): slicing gains nothing.
    for i, part in enumerate((9_500_000, 475_000, 23_750, 1_187)):
        cash.move_cash(engine, "t", a1, [(f"s{i}", cash.withdrawal("A1-GEN", part))])
    cash.move_cash(engine, "t", a1, [("one", cash.withdrawal("A1-REV", 7_499_937))])
    assert _acc(engine, "A1-GEN")["cash_cents"] == _acc(engine, "A1-REV")["cash_cents"] == 63


def test_com_acc_withdrawal_and_transfer_out_refused(engine: sa.Engine, a1: str) -> None:
    before = db_state(engine)
    with pytest.raises(RuleViolation, match="Com-Acc never allows withdrawals"):
        cash.move_cash(engine, "t", a1, [("w", cash.withdrawal("A1-COM", 100))])
    with pytest.raises(RuleViolation, match="Com-Acc never allows withdrawals"):
        cash.move_cash(engine, "t", a1, [("t", cash.transfer("A1-COM", "A1-GEN", 100))])
    with pytest.raises(RuleViolation):
        cash.move_cash(engine, "t", a1, [("w", cash.withdrawal("A1-COM", 100))], override_reason="admin says so")
    assert db_state(engine) == before


def test_transfer_moves_cash_and_base_capital(engine: sa.Engine, a1: str) -> None:
    cash.move_cash(engine, "t", a1, [("t1", cash.transfer("A1-GEN", "A1-COM", 1_000_000, memo="top up"))])
    assert _acc(engine, "A1-GEN")["cash_cents"] == 9_000_000
    assert _acc(engine, "A1-COM")["base_capital_cents"] == 8_500_000
    with pytest.raises(InvalidInput, match="two different accounts"):
        cash.move_cash(engine, "t", a1, [("t2", cash.transfer("A1-GEN", "a1-gen", 1))])
    assert verify(engine).ok


def test_admin_override_is_audited(engine: sa.Engine, a1: str) -> None:
    # Deployable cash is $95,000; the override lets $98,000 out.
    cash.move_cash(engine, "t", a1, [("w", cash.withdrawal("A1-GEN", 9_800_000))], override_reason="margin call")
    assert _acc(engine, "A1-GEN")["cash_cents"] == 200_000
    with engine.connect() as conn:
        reason = conn.execute(sa.select(audit_log.c.override_reason).where(audit_log.c.idempotency_key == "w")).scalar()
    assert reason == "margin call"
    with pytest.raises(InvalidInput, match="written reason"):
        cash.move_cash(engine, "t", a1, [("w2", cash.withdrawal("A1-GEN", 1))], override_reason="  ")


def test_batch_is_all_or_nothing_and_checked_in_order(engine: sa.Engine, a1: str) -> None:
    _buy_shares(engine, a1, "A1-GEN", 50_000)  # at most $47,368.42 of the $50,000 cash may leave
    before = db_state(engine)
    moves = [("b1", cash.withdrawal("A1-GEN", 4_000_000)), ("b2", cash.withdrawal("A1-GEN", 736_843))]
    with pytest.raises(BufferShortfall):  # each alone fits; together the second eats into the buffer
        cash.move_cash(engine, "t", a1, moves)
    assert db_state(engine) == before
    results = cash.move_cash(engine, "t", a1, [moves[0], ("b3", cash.deposit("A1-GEN", 1))])
    assert [r["kind"] for r in results] == ["WITHDRAWAL", "DEPOSIT"]


def test_idempotent_replay(engine: sa.Engine, a1: str) -> None:
    first = cash.move_cash(engine, "t", a1, [("k", cash.deposit("A1-REV", 1_000))])[0]
    again = cash.move_cash(engine, "t", a1, [("k", cash.deposit("A1-REV", 1_000))])[0]
    assert again == {**first, "replayed": True}
    assert _acc(engine, "A1-REV")["cash_cents"] == 7_501_000
    with pytest.raises(Conflict):
        cash.move_cash(engine, "t", a1, [("k", cash.deposit("A1-REV", 2_000))])


def test_reversal_corrects_without_editing(engine: sa.Engine, a1: str) -> None:
    (d,) = cash.move_cash(engine, "t", a1, [("d", cash.deposit("A1-GEN", 50_000))])
    r = cash.reverse(engine, "t", a1, d["transfer_id"], "wrong account", "rev")
    assert r["reverses_transfer_id"] == d["transfer_id"]
    assert _acc(engine, "A1-GEN")["cash_cents"] == 10_000_000
    with pytest.raises(Conflict, match="already been reversed"):
        cash.reverse(engine, "t", a1, d["transfer_id"], "again", "rev2")
    with engine.connect() as conn:  # ids are the database's to choose (Citus hands them out per node)
        t = transfers.c
        opening = conn.execute(sa.select(sa.func.min(t.id)).where(t.kind == "GROUP_OPEN")).scalar_one()
        unused = conn.execute(sa.select(sa.func.max(t.id))).scalar_one() + 1_000
    with pytest.raises(InvalidInput, match="GROUP_OPEN"):
        cash.reverse(engine, "t", a1, opening, "no", "rev3")
    with pytest.raises(NotFound):
        cash.reverse(engine, "t", a1, unused, "no", "rev4")
    assert verify(engine).ok


def test_unknown_and_inactive_targets(engine: sa.Engine, a1: str) -> None:
    with pytest.raises(NotFound, match="no account 'A9-GEN'"):
        cash.move_cash(engine, "t", a1, [("x", cash.withdrawal("A9-GEN", 1))])
    with pytest.raises(NotFound, match="no account group"):
        cash.move_cash(engine, "t", a1, [("x", cash.deposit("Z9", 1))])
    with pytest.raises(InvalidInput, match="positive"):
        cash.deposit("A1", 0)


def test_a_batch_stores_each_result_as_its_canonical_json(engine: sa.Engine, a1: str) -> None:
    """A batch's result texts are spelled with their shape known (cash.moved_texts): each is exactly
    the canonical JSON of the result the caller gets, for every kind of move and of leg."""
    groups.open_group(engine, "t", a1, "open-a2", groups.group_opening(25_000_000))
    kinds = [
        lambda i: cash.deposit("A1", 1_000 + i),  # a group: four legs
        lambda i: cash.deposit("A2-GEN", 7 + i, group=False, memo='é "quoted" \\ memo'),
        lambda i: cash.withdrawal("A1-REV", 3 + i),
        lambda i: cash.transfer("A2-GEN", "A1-REV", 11 + i),
    ]
    moves = [(f"b{i}", kinds[i % len(kinds)](i)) for i in range(400)]
    results = cash.move_cash(engine, "t", a1, moves)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(audit_log.c.idempotency_key, audit_log.c.result)).all())
    assert [stored[k] for k, _m in moves] == [canonical_json(r) for r in results]
    assert verify(engine).ok


def test_a_single_move_stores_its_result_as_its_canonical_json(engine: sa.Engine, a1: str) -> None:
    """A unit of work of one move spells its result with the shape known too; an amount that is not an
    int (a bool passes the positivity check, and SQLite stores it) is left to the generic encoder."""
    singles = [
        ("s1", cash.deposit("A1", 1_001)),
        ("s2", cash.withdrawal("A1-REV", 3, memo="é")),
        ("s3", cash.transfer("A1-GEN", "A1-REV", 11)),
    ]
    if engine.dialect.name == "sqlite":  # PostgreSQL refuses a boolean for a bigint
        singles.append(("s4", cash.deposit("A1-GEN", True, group=False)))  # type: ignore[arg-type]
    results = [cash.move_cash(engine, "t", a1, [move])[0] for move in singles]
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(audit_log.c.idempotency_key, audit_log.c.result)).all())
    assert [stored[k] for k, _m in singles] == [canonical_json(r) for r in results]
    assert engine.dialect.name != "sqlite" or '"amount_cents":true' in stored["s4"]
    assert verify(engine).ok
