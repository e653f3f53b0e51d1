"""Reading and writing orders: the latest mark an order is priced at, and the order intents."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from alluse.store.schema import instruments, marks, order_intents


def latest_mark_price(conn: sa.Connection, portfolio_id: int, symbol: str) -> int | None:
    """The newest marked price of an instrument (1/10,000 dollars), or None when it was never marked."""
    m, i = marks.c, instruments.c
    price = conn.execute(
        sa.select(m.price_e4)
        .join(instruments, i.id == m.instrument_id)
        .where(i.portfolio_id == portfolio_id, i.symbol == symbol)
        .order_by(m.as_of.desc(), m.id.desc())
        .limit(1)
    ).scalar()
    return None if price is None else int(price)


def insert_order_intent(conn: sa.Connection, row: dict[str, Any]) -> None:
    conn.execute(order_intents.insert().values(**row))
