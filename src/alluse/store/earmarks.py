"""Writing earmarks: the append-only `earmarks` rows and each account's cached total beside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypedDict

import sqlalchemy as sa

from alluse.store.prepared import Prepared, insert
from alluse.store.schema import accounts, earmarks

_a, _e = accounts.c, earmarks.c
_EARMARK_INSERT = insert(earmarks, [c.name for c in earmarks.columns if c.name != "id"])
_OPEN = Prepared(
    sa.select(sa.func.coalesce(sa.func.sum(_e.amount_cents), 0)).where(
        _e.account_id == sa.bindparam("aid"), _e.purpose == sa.bindparam("purpose")
    )
)
_EARMARKED_ADD = Prepared(
    accounts.update()
    .where(_a.id == sa.bindparam("aid"))
    .values(earmarked_cents=_a.earmarked_cents + sa.bindparam("delta"))
)


class EarmarkRow(TypedDict):
    """One `earmarks` row: an amount set aside (positive) or drawn down (negative)."""

    portfolio_id: int
    account_id: int
    purpose: str
    amount_cents: int
    action_id: int | None
    reference: str
    audit_seq: int
    created_at: datetime


def insert_earmarks(conn: sa.Connection, rows: Sequence[EarmarkRow]) -> None:
    _EARMARK_INSERT.many(conn, rows)


def open_earmark(conn: sa.Connection, account_id: int, purpose: str) -> int:
    """What is still earmarked in an account for a purpose (planned less drawn), in cents."""
    row = _OPEN.first(conn, aid=account_id, purpose=purpose)
    assert row is not None
    return int(row[0])


def add_to_earmarked(conn: sa.Connection, deltas: Sequence[Mapping[str, int]]) -> None:
    """Move accounts' cached earmarked totals by `{"aid": …, "delta": …}` each."""
    _EARMARKED_ADD.many(conn, deltas)
