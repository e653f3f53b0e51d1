"""Writing alerts: at most one open alert per account and kind, restated while it lasts, then cleared."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from alluse.store.ids import draw_ids
from alluse.store.prepared import Prepared, insert
from alluse.store.schema import alerts

_al = alerts.c
_OPEN = Prepared(
    sa.select(_al.id).where(
        _al.portfolio_id == sa.bindparam("pid"),
        _al.account_id == sa.bindparam("aid"),
        _al.kind == sa.bindparam("kind"),
        _al.cleared_at.is_(None),
    )
)
_INSERT = insert(alerts, ["id", "portfolio_id", "account_id", "kind", "message", "raised_at"])
_RESTATE = Prepared(
    alerts.update()
    .where(
        _al.portfolio_id == sa.bindparam("pid"), _al.id == sa.bindparam("alert_id"), _al.message != sa.bindparam("msg")
    )
    .values(message=sa.bindparam("msg"))
)
_CLEAR = Prepared(
    alerts.update()
    .where(
        _al.portfolio_id == sa.bindparam("pid"),
        _al.account_id == sa.bindparam("aid"),
        _al.kind == sa.bindparam("kind"),
        _al.cleared_at.is_(None),
    )
    .values(cleared_at=sa.bindparam("at"))
)


def open_alert_id(conn: sa.Connection, portfolio_id: int, account_id: int, kind: str) -> int | None:
    row = _OPEN.first(conn, pid=portfolio_id, aid=account_id, kind=kind)
    return None if row is None else int(row[0])


def restate_alert(conn: sa.Connection, portfolio_id: int, alert_id: int, message: str) -> None:
    """Give an open alert its current message (no write when it already says that)."""
    _RESTATE.run(conn, pid=portfolio_id, alert_id=alert_id, msg=message)


def insert_alert(
    conn: sa.Connection, portfolio_id: int, account_id: int, kind: str, message: str, raised_at: datetime
) -> None:
    # The id chosen here, so the audit manifest records the row from these parameters (store/rowlog.py).
    (alert_id,) = draw_ids(conn, alerts, 1)
    _INSERT.run(conn, id=alert_id, portfolio_id=portfolio_id, account_id=account_id, kind=kind, message=message,
                raised_at=raised_at)  # fmt: skip


def clear_alerts(conn: sa.Connection, portfolio_id: int, account_id: int, kind: str, at: datetime) -> int:
    """Clear the account's open alerts of a kind; returns how many were open."""
    return _CLEAR.run(conn, pid=portfolio_id, aid=account_id, kind=kind, at=at)
