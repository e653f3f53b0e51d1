"""`Insert.tuples` writes a column that a batch leaves NULL in every row as a literal of the statement
(SQLite): the rows stored and the audit manifest's images are the same as with the value bound."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from alluse.services.portfolios import create_portfolio
from alluse.store import rowlog
from alluse.store.prepared import insert
from alluse.store.schema import portfolios, transfers

_COLUMNS = ["id", "portfolio_id", "number", "kind", "memo", "reverses_transfer_id", "audit_seq", "created_at"]


def test_null_columns_are_written_and_recorded_as_bound(engine: sa.Engine) -> None:
    create_portfolio(engine, "t", "t", "t:portfolio")
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    all_null = [(i, 0, i, "DEPOSIT", "", None, i, now) for i in range(1, 4)]
    mixed = [(4, 0, 4, "REVERSAL", "undo", 1, 4, now), (5, 0, 5, "DEPOSIT", "", None, 5, now)]
    one = [(6, 0, 6, "DEPOSIT", "", None, 6, now)]
    ins = insert(transfers, _COLUMNS)
    with engine.begin() as conn:
        pid = conn.execute(sa.select(portfolios.c.id)).scalar_one()
        batches = [[(r[0], pid, *r[2:]) for r in rows] for rows in (all_null, mixed, one)]
        with rowlog.recording(conn, pid) as cap:
            for rows in batches:
                ins.tuples(conn, rows)
            manifest = cap.manifest()
        stored = conn.execute(
            sa.select(transfers.c.id, transfers.c.reverses_transfer_id, transfers.c.memo).order_by(transfers.c.id)
        ).all()
    assert [tuple(r) for r in stored] == [(r[0], r[5], r[4]) for rows in batches for r in rows]
    keys, images = manifest["transfers"]
    assert keys == [1, 2, 3, 4, 5, 6]
    assert [image[5] for image in images] == [None, None, None, 1, None, None]
    assert {image[7] for image in images} == {"2026-11-30T12:00:00.000000"}
