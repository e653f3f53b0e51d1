"""The portfolio's brokerage accounts as a reader sees them: the pool and what each one maps to."""

from __future__ import annotations

from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.store.repo import account_label
from alluse.store.schema import accounts, brokerage_accounts
from alluse.store.scope import PortfolioRef, resolve_portfolio


class BrokerageLine(TypedDict):
    """One brokerage account of the pool and the sleeve it is mapped to (POOL: none)."""

    brokerage_account: str  # BROKER:NUMBER
    mapped_to: str | None
    status: str
    has_credentials: bool


def list_brokerage(engine: Engine, portfolio: PortfolioRef) -> list[BrokerageLine]:
    """The portfolio's brokerage accounts and what each maps to. Credentials are never returned."""
    b = brokerage_accounts
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        q = (
            sa.select(
                b.c.broker,
                b.c.number,
                accounts.c.kind,
                accounts.c.name,
                accounts.c.status,
                b.c.credentials_encrypted.is_not(None).label("has_credentials"),
            )
            .select_from(
                b.outerjoin(
                    accounts, sa.and_(accounts.c.portfolio_id == b.c.portfolio_id, accounts.c.id == b.c.account_id)
                )
            )
            .where(b.c.portfolio_id == pid)
            .order_by(b.c.broker, b.c.number)
        )
        return [
            {
                "brokerage_account": f"{r.broker}:{r.number}",
                "mapped_to": account_label(r.kind, r.name) if r.name else None,
                "status": r.status or "POOL",
                "has_credentials": bool(r.has_credentials),
            }
            for r in conn.execute(q)
        ]
