"""Reading and writing orders: the latest mark an order is priced at, and the order intents."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import sqlalchemy as sa

from alluse.store.schema import instruments, marks, order_intents


def latest_mark_price(conn: sa.Connection, portfolio_id: int, symbol: str) -> int | None:
    """The newest marked price of an instrument (1/10,000 dollars), or None when it was never marked."""
    m, i = marks.c, instruments.c
    price = conn.execute(
        sa.select(m.price_e4)
        .join(instruments, sa.and_(i.portfolio_id == m.portfolio_id, i.id == m.instrument_id))
        .where(i.portfolio_id == portfolio_id, i.symbol == symbol)
        .order_by(m.as_of.desc(), m.id.desc())
        .limit(1)
    ).scalar()
    return None if price is None else int(price)


class OrderIntentRow(TypedDict):
    """An order intent as `order_intents` keeps it, but for its id, status and fill (known once it is placed)."""

    portfolio_id: int
    account_id: int
    action: str
    symbol: str
    quantity: int
    limit_e4: int
    broker: str
    check_result: str  # JSON: the pre-trade check's violations and warnings
    audit_seq: int
    created_at: datetime


def insert_order_intent(
    conn: sa.Connection, order_id: int, status: str, fill_id: int | None, row: OrderIntentRow
) -> None:
    conn.execute(order_intents.insert().values({"id": order_id, "status": status, "fill_id": fill_id, **row}))
