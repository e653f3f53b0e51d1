"""The journal as people read it: the portfolio's transfers by number, with their legs, filtered and
paged (`alluse journal`). A read view: nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput
from alluse.domain.ledger import TransferKind
from alluse.domain.money import Cents
from alluse.store.repo import resolve_account
from alluse.store.schema import accounts, postings, transfers
from alluse.store.scope import resolve_portfolio

MAX_PER_PAGE = 1000


class JournalLeg(TypedDict):
    account: str
    amount_cents: Cents


class JournalTransfer(TypedDict):
    number: int
    kind: str
    recorded_at: str
    memo: str
    amount_cents: Cents  # the sum of its positive legs
    legs: list[JournalLeg]
    reverses: int | None  # transfer numbers
    reversed_by: int | None


class JournalPage(TypedDict):
    total: int
    page: int
    per_page: int
    transfers: list[JournalTransfer]


def journal(
    engine: Engine,
    portfolio: str | int | None,
    *,
    account: str | None = None,
    kind: str | None = None,
    start: date | None = None,
    end: date | None = None,
    page: int = 1,
    per_page: int = 50,
) -> JournalPage:
    """Transfers oldest first, `per_page` to a page. `start`/`end` are days the transfer was recorded
    (UTC), both included; `account` keeps transfers with a leg on that account."""
    kinds = _kind(kind)
    if start and end and start > end:
        raise InvalidInput(f"--from {start} is after --to {end}")
    if page < 1:
        raise InvalidInput(f"page must be 1 or more, got {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput(f"per page must be between 1 and {MAX_PER_PAGE}, got {per_page}")
    t = transfers.c
    with engine.connect() as conn:
        cond = _filters(conn, resolve_portfolio(conn, portfolio), kinds, start, end, account)
        total = conn.execute(sa.select(sa.func.count()).select_from(transfers).where(*cond)).scalar_one()
        rows = conn.execute(
            sa.select(t.id, t.number, t.kind, t.memo, t.created_at, t.reverses_transfer_id)
            .where(*cond)
            .order_by(t.number)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        legs, number_of, reversed_by = _legs_and_links(conn, rows)
    entries: list[JournalTransfer] = [
        {
            "number": r.number,
            "kind": r.kind,
            "recorded_at": _utc(r.created_at).isoformat(),
            "memo": r.memo,
            "amount_cents": Cents(sum(leg["amount_cents"] for leg in legs[r.id] if leg["amount_cents"] > 0)),
            "legs": legs[r.id],
            "reverses": number_of.get(r.reverses_transfer_id) if r.reverses_transfer_id else None,
            "reversed_by": reversed_by.get(r.id),
        }
        for r in rows
    ]
    return {"total": total, "page": page, "per_page": per_page, "transfers": entries}


def _filters(
    conn: sa.Connection, pid: int, kinds: list[str], start: date | None, end: date | None, account: str | None
) -> list[sa.ColumnElement[bool]]:
    t, p = transfers.c, postings.c
    cond = [t.portfolio_id == pid]
    if kinds:
        cond.append(t.kind.in_(kinds))
    if start:
        cond.append(t.created_at >= datetime.combine(start, time(), UTC))
    if end:
        cond.append(t.created_at < datetime.combine(end + timedelta(days=1), time(), UTC))
    if account:
        aid = resolve_account(conn, pid, account)
        cond.append(sa.exists().where(p.portfolio_id == t.portfolio_id, p.transfer_id == t.id, p.account_id == aid))
    return cond


def _legs_and_links(
    conn: sa.Connection, rows: Sequence[Any]
) -> tuple[dict[int, list[JournalLeg]], dict[int, int], dict[int, int]]:
    """For a page of transfers: each one's legs, the numbers of the page's transfers and of those they
    reverse (by id), and the number of the transfer that reverses each (by id)."""
    t, p = transfers.c, postings.c
    ids = [r.id for r in rows]
    legs: dict[int, list[JournalLeg]] = {i: [] for i in ids}
    number_of: dict[int, int] = {r.id: r.number for r in rows}
    reversed_by: dict[int, int] = {}
    if not ids:
        return legs, number_of, reversed_by
    q = (
        sa.select(p.transfer_id, accounts.c.name, p.amount_cents)
        .join(accounts, sa.and_(accounts.c.portfolio_id == p.portfolio_id, accounts.c.id == p.account_id))
        .where(p.transfer_id.in_(ids))
        .order_by(p.transfer_id, p.id)
    )
    for tid, name, cents in conn.execute(q):
        legs[tid].append({"account": name, "amount_cents": Cents(cents)})
    r2 = transfers.alias("r")
    for old, new_number in conn.execute(
        sa.select(t.reverses_transfer_id, r2.c.number)
        .select_from(transfers.join(r2, sa.and_(r2.c.portfolio_id == t.portfolio_id, r2.c.id == t.id)))
        .where(t.reverses_transfer_id.in_(ids))
    ):
        reversed_by[old] = new_number
    wanted = [r.reverses_transfer_id for r in rows if r.reverses_transfer_id is not None]
    if wanted:
        number_of.update({i: n for i, n in conn.execute(sa.select(t.id, t.number).where(t.id.in_(wanted)))})
    return legs, number_of, reversed_by


def _utc(at: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its zone.
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _kind(text: str | None) -> list[str]:
    if not text:
        return []
    out = []
    for part in text.split(","):
        try:
            out.append(TransferKind(part.strip().upper()).value)
        except ValueError:
            raise InvalidInput(
                f"kind: unknown transfer kind {part.strip()!r}; one of {', '.join(k.value for k in TransferKind)}"
            ) from None
    return out
