"""The outbox: events written in the unit of work of the change they announce (docs/events.md).

A unit of work collects its events on `Tx.events`; `flush` numbers them with the portfolio's next
sequence numbers (one UPDATE ... RETURNING on the portfolio row, which the unit of work already holds
locked, so numbers are gap-free and in commit order) and writes them with one batched INSERT.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alluse.domain.audit import canonical_json
from alluse.domain.events import SCHEMA_VERSION
from alluse.store.prepared import Prepared, insert
from alluse.store.schema import events, portfolios

_BUMP = Prepared(
    portfolios.update()
    .where(portfolios.c.id == sa.bindparam("pid"))
    .values(event_seq=portfolios.c.event_seq + sa.bindparam("n", type_=sa.BigInteger))
    .returning(portfolios.c.event_seq)
)
_INSERT = insert(events, [c.name for c in events.columns if c.name != "id"])


def event_row(
    portfolio_id: int,
    audit_seq: int,
    at: datetime,
    kind: str,
    data: dict[str, Any] | str,
    account_id: int | None = None,
    action_id: int | None = None,
) -> dict[str, Any]:
    """An outbox row; `data` is the payload, or its canonical JSON when the caller already has it."""
    return {
        "portfolio_id": portfolio_id,
        "kind": kind,
        "action_id": action_id,
        "account_id": account_id,
        "payload": data if isinstance(data, str) else canonical_json(data),
        "audit_seq": audit_seq,
        "created_at": at,
        "version": SCHEMA_VERSION,
    }


def flush(conn: sa.Connection, portfolio_id: int, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    head = _BUMP.rows(conn, pid=portfolio_id, n=len(rows))[0][0]
    first = head - len(rows) + 1
    for i, r in enumerate(rows):
        r["seq"] = first + i
        r["event_id"] = str(uuid.uuid4())
    _INSERT.many(conn, rows)
