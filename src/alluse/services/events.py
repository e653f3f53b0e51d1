"""Reads of the outbox for screens: the events of one portfolio after a sequence number."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.events import Envelope, Event, kind_matches, validate_kinds
from alluse.store import outbox
from alluse.store.schema import events, portfolios
from alluse.store.scope import resolve_portfolio


def head(engine: Engine, portfolio: str | int | None) -> int:
    """The portfolio's newest event sequence number (0 before its first event)."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        return int(conn.execute(sa.select(portfolios.c.event_seq).where(portfolios.c.id == pid)).scalar_one())


def after(
    engine: Engine, portfolio: str | int | None, seq: int, kinds: list[str] | None = None, limit: int = 500
) -> list[Envelope]:
    """Envelopes of the portfolio's events with a sequence number above `seq`, oldest first, of the
    given kinds (exact, `prefix.*`, or all)."""
    filters = validate_kinds(kinds or [])
    e = events.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        q = sa.select(*outbox.EVENT_COLUMNS).where(e.portfolio_id == pid, e.seq > seq).order_by(e.seq).limit(limit)
        found = [Event._make(r) for r in conn.execute(q)]
    return [ev.envelope() for ev in found if kind_matches(filters, ev.kind)]


def to_json(envelope: Envelope) -> str:
    return json.dumps(envelope, sort_keys=True)
