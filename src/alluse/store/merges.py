"""Writing a merge (ALLUSE_RULES §5.3): a group's sleeves hand their holdings, earmarks and status over
to the target account. The plan and its cash legs come from the lifecycle; these are its row moves."""

from __future__ import annotations

from typing import TypedDict

import sqlalchemy as sa

from alluse.domain.instruments import value_cents
from alluse.store.schema import account_groups, accounts, instruments, lots, positions

_a = accounts.c


class HoldingsMoved(TypedDict):
    lots_moved: int
    positions_moved: int
    collateral_moved_cents: int


def active_members(conn: sa.Connection, pid: int, group_id: int) -> list[int]:
    q = sa.select(_a.id).where(_a.portfolio_id == pid, _a.group_id == group_id, _a.status == "ACTIVE")
    return [int(r.id) for r in conn.execute(q)]


def move_holdings(conn: sa.Connection, pid: int, members: list[int], target: int) -> HoldingsMoved:
    """Open lots and positions move in kind: each open lot keeps its row (open date, quantity, cost
    basis, the closings already made), only its account changes; short puts bring their collateral.
    Realized history stays with the merged sleeve, as the tax ledger is per account."""
    lo, p, i = lots.c, positions.c, instruments.c
    moved_lots = conn.execute(
        lots.update()
        .where(lo.portfolio_id == pid, lo.account_id.in_(members), lo.remaining > 0)
        .values(account_id=target)
    ).rowcount
    held = {
        iid: (pos_id, qty, mark, on)
        for pos_id, iid, qty, mark, on in conn.execute(
            sa.select(p.id, p.instrument_id, p.quantity, p.mark_e4, p.marked_on).where(
                p.portfolio_id == pid, p.account_id == target
            )
        )
    }
    rows = conn.execute(
        sa.select(p.id, p.instrument_id, p.quantity, p.mark_e4, p.marked_on).where(
            p.portfolio_id == pid, p.account_id.in_(members), p.quantity != 0
        )
    ).all()
    for pos_id, iid, qty, mark, on in rows:
        if iid not in held:
            conn.execute(positions.update().where(p.portfolio_id == pid, p.id == pos_id).values(account_id=target))
            held[iid] = (pos_id, qty, mark, on)
            continue
        tid, tqty, tmark, ton = held[iid]
        newer = (mark, on) if str(on) > str(ton) else (tmark, ton)  # one instrument, one price: the newest
        conn.execute(
            positions.update()
            .where(p.portfolio_id == pid, p.id == tid)
            .values(quantity=tqty + qty, mark_e4=newer[0], marked_on=newer[1])
        )
        conn.execute(positions.update().where(p.portfolio_id == pid, p.id == pos_id).values(quantity=0))
        held[iid] = (tid, tqty + qty, *newer)
    value = sum(
        value_cents(qty, mark, mult)
        for qty, mark, mult in conn.execute(
            sa.select(p.quantity, p.mark_e4, i.multiplier)
            .join(instruments, sa.and_(i.portfolio_id == p.portfolio_id, i.id == p.instrument_id))
            .where(p.portfolio_id == pid, p.account_id == target)
        )
    )
    collateral = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(_a.collateral_cents), 0)).where(
            _a.portfolio_id == pid, _a.id.in_(members)
        )
    ).scalar_one()
    conn.execute(
        accounts.update()
        .where(_a.portfolio_id == pid, _a.id == target)
        .values(positions_value_cents=value, collateral_cents=_a.collateral_cents + int(collateral))
    )
    return {"lots_moved": int(moved_lots), "positions_moved": len(rows), "collateral_moved_cents": int(collateral)}


def close_merged(
    conn: sa.Connection, pid: int, group_id: int, members: list[int], target: int, cash_cents: int
) -> None:
    """The members are emptied and MERGED, the target takes their cash as base capital, the group is MERGED."""
    conn.execute(
        accounts.update()
        .where(_a.portfolio_id == pid, _a.id.in_(members))
        .values(cash_cents=0, positions_value_cents=0, collateral_cents=0, status="MERGED")
    )
    conn.execute(
        accounts.update()
        .where(_a.portfolio_id == pid, _a.id == target)
        .values(cash_cents=_a.cash_cents + cash_cents, base_capital_cents=_a.base_capital_cents + cash_cents)
    )
    g = account_groups.c
    conn.execute(account_groups.update().where(g.portfolio_id == pid, g.id == group_id).values(status="MERGED"))


def group_of(conn: sa.Connection, pid: int, account_id: int) -> int:
    return int(conn.execute(sa.select(_a.group_id).where(_a.portfolio_id == pid, _a.id == account_id)).scalar_one())


def hand_over_earmarked(conn: sa.Connection, pid: int, members: list[int], target: int, total: int) -> None:
    """The cached earmarked totals follow the earmark rows: the members' to zero, the target's up."""
    conn.execute(accounts.update().where(_a.portfolio_id == pid, _a.id.in_(members)).values(earmarked_cents=0))
    conn.execute(
        accounts.update()
        .where(_a.portfolio_id == pid, _a.id == target)
        .values(earmarked_cents=_a.earmarked_cents + total)
    )
