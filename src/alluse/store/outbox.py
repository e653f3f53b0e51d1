"""The outbox: events written in the unit of work of the change they announce (docs/events.md).

A unit of work collects its events on `Tx.events`; `flush` numbers them with the portfolio's next
sequence numbers (read from the portfolio row with its lock, and written back with the audit head,
so numbers are gap-free and in commit order) and writes them with one batched INSERT.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from datetime import datetime
from itertools import repeat
from typing import NamedTuple

import sqlalchemy as sa

from alluse.domain.events import SCHEMA_VERSION, Event
from alluse.store.ids import IdPool, draw_ids
from alluse.store.prepared import insert
from alluse.store.schema import event_cursors, events, portfolios

_COLUMNS = ["id", "portfolio_id", "kind", "action_id", "account_id", "payload", "audit_seq", "created_at", "seq",
            "event_id", "version"]  # fmt: skip
_INSERT = insert(events, _COLUMNS)


class Pending(NamedTuple):
    """An event a unit of work will write: what it announces (its payload as canonical JSON) and the
    audit entry of the request it belongs to."""

    audit_seq: int | None
    kind: str
    payload: str
    account_id: int | None = None
    action_id: int | None = None


_new_pending = functools.partial(tuple.__new__, Pending)


def pending_of_kind(kind: str, entries: Sequence[tuple[int, str]]) -> list[Pending]:
    """Events of one kind from (audit seq, payload) pairs, as a bulk unit of work announces its
    requests: built in C, where `Pending(...)` is a Python-level call per event."""
    if not entries:
        return []
    if len(entries) == 1:  # a unit of work of one request: no columns to take apart
        ((seq, payload),) = entries
        return [_new_pending((seq, kind, payload, None, None))]
    seqs, payloads = zip(*entries, strict=True)
    return list(map(_new_pending, zip(seqs, repeat(kind), payloads, repeat(None), repeat(None))))


def flush(
    conn: sa.Connection, portfolio_id: int, at: datetime, rows: Sequence[Pending], after: int, ids: IdPool | None = None
) -> int:
    """Write the events numbered after the portfolio's last sequence number `after`; returns the new
    last one, which the unit of work stores on the portfolio row. Ids are chosen here, so the audit
    manifest records the rows from these parameters."""
    if not rows:
        return after
    n = len(rows)
    chosen = ids.take(conn, n) if ids is not None else draw_ids(conn, events, n)
    event_ids = uuid4_texts(n)
    if n == 1:  # a unit of work of one request: no columns to take apart
        ((seq, kind, payload, account_id, action_id),) = rows
        _INSERT.tuples(conn, [(chosen[0], portfolio_id, kind, action_id, account_id, payload, seq, at, after + 1,
                               event_ids[0], SCHEMA_VERSION)])  # fmt: skip
        return after + 1
    seqs, kinds, payloads, account_ids, action_ids = zip(*rows, strict=True)  # Pending's fields
    # Column by column, zipped into rows in C: no Python step per event.
    _INSERT.tuples(
        conn,
        list(zip(chosen, repeat(portfolio_id, n), kinds, action_ids, account_ids, payloads, seqs, repeat(at, n),
                 range(after + 1, after + 1 + n), event_ids, repeat(SCHEMA_VERSION, n), strict=True)),
    )  # fmt: skip
    return after + n


def uuid4_texts(n: int) -> list[str]:
    """n random (version 4) UUIDs as text, from one read of the system's random source: what
    `str(uuid.uuid4())` gives, without a system call and an object per event."""
    raw = os.urandom(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        h = raw[i : i + 32]
        # The version nibble becomes 4; the variant's two top bits become 10 (RFC 4122).
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return out


_VARIANT = {f"{v:x}": f"{(v & 0x3) | 0x8:x}" for v in range(16)}


# --- reading the outbox: per consumer, per portfolio, in sequence order --------------------------

_e, _c = events.c, event_cursors.c
_PENDING = (
    sa.select(portfolios.c.id, sa.func.coalesce(_c.seq, 0))
    .select_from(
        portfolios.outerjoin(
            event_cursors, (_c.portfolio_id == portfolios.c.id) & (_c.consumer == sa.bindparam("consumer"))
        )
    )
    .where(portfolios.c.event_seq > sa.func.coalesce(_c.seq, 0))
    .order_by(portfolios.c.id)
)
# In the order of domain.events.Event's fields.
EVENT_COLUMNS = (_e.id, _e.event_id, _e.portfolio_id, _e.seq, _e.kind, _e.version, _e.created_at, _e.audit_seq,
                 _e.account_id, _e.payload)  # fmt: skip
_READ = (
    sa.select(*EVENT_COLUMNS)
    .where(_e.portfolio_id == sa.bindparam("pid"), _e.seq > sa.bindparam("after"))
    .order_by(_e.seq)
    .limit(sa.bindparam("n"))
)


def pending(conn: sa.Connection, consumer: str, limit: int) -> list[Event]:
    """Up to `limit` events the consumer has not passed yet, portfolio by portfolio, each in seq order."""
    out: list[Event] = []
    for pid, after in conn.execute(_PENDING, {"consumer": consumer}).all():
        rows = conn.execute(_READ, {"pid": pid, "after": after, "n": limit - len(out)})
        out += [Event._make(r) for r in rows]
        if len(out) >= limit:
            break
    return out


def cursor(conn: sa.Connection, consumer: str, portfolio_id: int) -> int:
    q = sa.select(_c.seq).where(_c.consumer == consumer, _c.portfolio_id == portfolio_id)
    return conn.execute(q).scalar() or 0


def advance(conn: sa.Connection, consumer: str, heads: dict[int, int], now: datetime) -> None:
    """Move the consumer's cursors forward to `heads` (never back: two relays may race)."""
    for pid, seq in heads.items():
        done = conn.execute(
            event_cursors.update()
            .where(_c.consumer == consumer, _c.portfolio_id == pid, _c.seq < seq)
            .values(seq=seq, updated_at=now)
        ).rowcount
        if (
            not done
            and conn.execute(sa.select(_c.seq).where(_c.consumer == consumer, _c.portfolio_id == pid)).first() is None
        ):
            conn.execute(event_cursors.insert().values(consumer=consumer, portfolio_id=pid, seq=seq, updated_at=now))
