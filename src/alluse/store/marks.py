"""Writing marks: the price rows, and the positions and cached positions values they revalue."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from alluse.store.schema import accounts, instruments, marks, positions

_i, _p = instruments.c, positions.c


def instrument_ids(conn: sa.Connection, portfolio_id: int, symbols: Collection[str]) -> dict[str, int]:
    """Symbol → instrument id, for the symbols the portfolio has traded."""
    q = sa.select(_i.symbol, _i.id).where(_i.portfolio_id == portfolio_id, _i.symbol.in_(list(symbols)))
    return {symbol: int(iid) for symbol, iid in conn.execute(q)}


def insert_marks(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    conn.execute(marks.insert(), rows)


def positions_to_revalue(
    conn: sa.Connection, portfolio_id: int, instrument_ids: Collection[int], as_of: date
) -> list[tuple[int, int, int, int, int, int]]:
    """(position id, account id, instrument id, quantity, current mark, multiplier) of the positions
    in those instruments whose price is not newer than `as_of`."""
    q = (
        sa.select(_p.id, _p.account_id, _p.instrument_id, _p.quantity, _p.mark_e4, _i.multiplier)
        .join(instruments, sa.and_(_i.portfolio_id == _p.portfolio_id, _i.id == _p.instrument_id))
        .where(_p.portfolio_id == portfolio_id, _p.instrument_id.in_(list(instrument_ids)), _p.marked_on <= as_of)
    )
    return [tuple(r) for r in conn.execute(q)]


def set_position_marks(conn: sa.Connection, pid: int, marks_by_position: Mapping[int, int], as_of: date) -> None:
    conn.execute(
        positions.update()
        .where(_p.portfolio_id == pid, _p.id == sa.bindparam("pos_id"))
        .values(mark_e4=sa.bindparam("mark"), marked_on=as_of),
        [{"pos_id": pos_id, "mark": mark} for pos_id, mark in marks_by_position.items()],
    )


def set_positions_value(conn: sa.Connection, pid: int, account_id: int, value_cents: int) -> None:
    a = accounts.c
    conn.execute(
        accounts.update().where(a.portfolio_id == pid, a.id == account_id).values(positions_value_cents=value_cents)
    )
