"""Alerts: conditions a human should look at, raised inside the unit of work that caused them.

A broker fact (fill, assignment, fee) or a market move is never refused by the buffer rule
(ALLUSE_RULES §4); when it leaves an account below its cash buffer, a BUFFER_BREACH alert is raised.
Every write that changes an account's cash or value (facts, marks, tax payments, deposits,
withdrawals, transfers, reversals) checks it again: while the breach lasts the open alert shows the
current figures, and the first write that finds the account back at its buffer clears it.

Every alert raised or cleared is also an outbox event of kind `alert.<rule>` in the same unit of work,
so webhooks and `alluse alerts --follow` reach a person (docs/events.md lists the rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.audit import digest
from alluse.domain.events import alert_kind
from alluse.domain.money import format_usd
from alluse.store import alerts as store
from alluse.store.repo import AccountRow
from alluse.store.schema import accounts, alerts
from alluse.store.scope import resolve_portfolio
from alluse.store.uow import Request, Tx, write

BUFFER_BREACH = "BUFFER_BREACH"


class OpenAlert(TypedDict):
    id: int
    name: str  # the account's
    kind: str
    message: str
    raised_at: datetime


class DifferenceRecorded(TypedDict):
    brokerage_account: str
    account: str
    as_of: str
    differences: list[Any]  # the reconciliation's, as it found them


_al = alerts.c


def alert_event(
    tx: Tx, index: int | None, rule: str, account_id: int | None, message: str, state: str = "raised"
) -> None:
    """The outbox event of an alert rule (for the index-th request; None: the unit of work's last)."""
    tx.emit(index, alert_kind(rule), {"rule": rule.lower(), "state": state, "account_id": account_id,
                                      "message": message[:300]}, account_id)  # fmt: skip


def raise_alert(tx: Tx, account_id: int, kind: str, message: str, index: int | None = None) -> bool:
    """Raise `kind` for the account; an open one is restated with the new message (its figures are then
    the current ones) instead. True when a new alert was raised."""
    open_alert = store.open_alert_id(tx.conn, account_id, kind)
    if open_alert is not None:
        store.restate_alert(tx.conn, open_alert, message[:300])
        return False
    alert_event(tx, index, kind, account_id, message)
    store.insert_alert(tx.conn, tx.portfolio_id, account_id, kind, message[:300], tx.now)
    return True


def clear_alert(tx: Tx, account_id: int, kind: str, message: str = "") -> int:
    if store.open_alert_id(tx.conn, account_id, kind) is None:  # the usual case: a read, not a write
        return 0
    alert_event(tx, None, kind, account_id, message or f"account {account_id}: {kind} cleared", state="cleared")
    return store.clear_alerts(tx.conn, account_id, kind, tx.now)


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
        acc.breach_alert_open = True
        return True
    if acc.breach_alert_open is not False:  # open, or not known from the account's load
        clear_alert(
            tx, acc.id, BUFFER_BREACH, f"{acc.label}: cash {format_usd(snap.cash)} is back above its cash buffer"
        )
        acc.breach_alert_open = False
    return False


def open_alerts(engine: Engine, portfolio: str | int | None) -> list[OpenAlert]:
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        q = (
            sa.select(_al.id, accounts.c.name, _al.kind, _al.message, _al.raised_at)
            .join(accounts, sa.and_(accounts.c.portfolio_id == _al.portfolio_id, accounts.c.id == _al.account_id))
            .where(_al.portfolio_id == pid, _al.cleared_at.is_(None))
            .order_by(_al.id)
        )
        return [
            {"id": r.id, "name": r.name, "kind": r.kind, "message": r.message, "raised_at": r.raised_at}
            for r in conn.execute(q)
        ]


def record_reconciliation(
    engine: Engine, actor: str, portfolio: str | int | None, reconciliation: Mapping[str, Any]
) -> None:
    """A statement that disagrees with alluse is something a person must look at: one
    `broker.reconcile` write per differing account, each with its `alert.reconciliation_difference`
    event. Keyed by account, statement day and the differences, so the same finding is recorded once."""
    differing = [a for a in reconciliation["accounts"] if a["differences"]]
    by_key = {f"reconcile:{a['brokerage_account']}:{a['as_of']}:{digest(a['differences'])[:16]}": a for a in differing}
    if not by_key:
        return

    def apply(tx: Tx, fresh: list[Request]) -> list[DifferenceRecorded]:
        out: list[DifferenceRecorded] = []
        for i, r in enumerate(fresh):
            a = by_key[r.key]
            n = len(a["differences"])
            alert_event(tx, i, "reconciliation_difference", None, f"{a['account']} ({a['brokerage_account']}): "
                        f"{n} difference{'s' if n > 1 else ''} against the statement of {a['as_of']}")  # fmt: skip
            out.append({"brokerage_account": a["brokerage_account"], "account": a["account"], "as_of": a["as_of"],
                        "differences": a["differences"]})  # fmt: skip
        return out

    requests = [
        Request(k, {"brokerage_account": a["brokerage_account"], "as_of": a["as_of"]}) for k, a in by_key.items()
    ]
    write(engine, portfolio, actor, "broker.reconcile", requests, apply)
