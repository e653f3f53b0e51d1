"""Alerts: conditions a human should look at, raised inside the unit of work that caused them.

A broker fact (fill, assignment, fee) or a market move is never refused by the buffer rule
(ALLUSE_RULES §4); when it leaves an account below its cash buffer, a BUFFER_BREACH alert is raised.
Every write that changes an account's cash or value (facts, marks, tax payments, deposits,
withdrawals, transfers, reversals) checks it again: while the breach lasts the open alert shows the
current figures, and the first write that finds the account back at its buffer clears it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.money import format_usd
from alluse.store.prepared import Prepared, insert
from alluse.store.repo import AccountRow, resolve_portfolio
from alluse.store.schema import accounts, alerts
from alluse.store.uow import Tx

BUFFER_BREACH = "BUFFER_BREACH"

_al = alerts.c
_OPEN = Prepared(
    sa.select(_al.id).where(
        _al.account_id == sa.bindparam("aid"), _al.kind == sa.bindparam("kind"), _al.cleared_at.is_(None)
    )
)
_INSERT = insert(alerts, ["portfolio_id", "account_id", "kind", "message", "raised_at"])
_RESTATE = Prepared(
    alerts.update()
    .where(_al.id == sa.bindparam("alert_id"), _al.message != sa.bindparam("msg"))
    .values(message=sa.bindparam("msg"))
)
_CLEAR = Prepared(
    alerts.update()
    .where(_al.account_id == sa.bindparam("aid"), _al.kind == sa.bindparam("kind"), _al.cleared_at.is_(None))
    .values(cleared_at=sa.bindparam("at"))
)


def raise_alert(tx: Tx, account_id: int, kind: str, message: str) -> bool:
    """Raise `kind` for the account; an open one is restated with the new message (its figures are then
    the current ones) instead. True when a new alert was raised."""
    open_alert = _OPEN.first(tx.conn, aid=account_id, kind=kind)
    if open_alert is not None:
        _RESTATE.run(tx.conn, alert_id=open_alert[0], msg=message[:300])
        return False
    _INSERT.run(
        tx.conn,
        portfolio_id=tx.portfolio_id,
        account_id=account_id,
        kind=kind,
        message=message[:300],
        raised_at=tx.now,
    )
    return True


def clear_alert(tx: Tx, account_id: int, kind: str) -> int:
    if _OPEN.first(tx.conn, aid=account_id, kind=kind) is None:  # the usual case: a read, not a write
        return 0
    return _CLEAR.run(tx.conn, aid=account_id, kind=kind, at=tx.now)


def check_buffer(tx: Tx, acc: AccountRow, cause: str) -> bool:
    """Raise or clear the account's BUFFER_BREACH after a fact; True while breached."""
    snap = acc.snapshot
    if snap.buffer_breached:
        raise_alert(
            tx,
            acc.id,
            BUFFER_BREACH,
            f"{acc.label}: cash {format_usd(snap.cash)} is below its cash buffer {format_usd(snap.cash_buffer)} "
            f"after {cause}",
        )
        return True
    clear_alert(tx, acc.id, BUFFER_BREACH)
    return False


def open_alerts(engine: Engine, portfolio: str | int | None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        q = (
            sa.select(_al.id, accounts.c.name, _al.kind, _al.message, _al.raised_at)
            .join(accounts, accounts.c.id == _al.account_id)
            .where(_al.portfolio_id == pid, _al.cleared_at.is_(None))
            .order_by(_al.id)
        )
        return [dict(r._mapping) for r in conn.execute(q)]
