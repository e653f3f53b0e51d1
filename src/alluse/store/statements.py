"""Reading and writing broker statement imports: which system accounts an IBKR statement's account
numbers map to, and the imported rows that keep each broker fact once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TypedDict

import sqlalchemy as sa

from alluse.store.prepared import insert
from alluse.store.schema import accounts, broker_rows, brokerage_accounts

_ROW_INSERT = insert(broker_rows, [c.name for c in broker_rows.columns if c.name != "id"])


class BrokerRow(TypedDict):
    """One imported broker row, as `broker_rows` keeps it."""

    portfolio_id: int
    account_id: int
    broker: str
    number: str
    broker_key: str
    action: str
    booked_on: date
    cash_cents: int
    fill_id: int | None
    transfer_id: int | None
    audit_seq: int


def mapped_numbers(
    conn: sa.Connection, portfolio_id: int, broker: str, numbers: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """Broker account number → (system account id, name), for the numbers that are mapped."""
    b = brokerage_accounts.c
    rows = conn.execute(
        sa.select(b.number, accounts.c.id, accounts.c.name)
        .join(accounts, sa.and_(accounts.c.portfolio_id == b.portfolio_id, accounts.c.id == b.account_id))
        .where(b.portfolio_id == portfolio_id, b.broker == broker, b.number.in_(numbers))
    ).all()
    return {n: (aid, name) for n, aid, name in rows}


def insert_broker_rows(conn: sa.Connection, rows: Sequence[BrokerRow]) -> None:
    _ROW_INSERT.many(conn, rows)
