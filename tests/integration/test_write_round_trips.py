"""The write path's round-trip savings keep its behaviour: a failing statement sent in pipeline mode
still raises the SQLAlchemy error it raises otherwise, and nothing of the unit of work is kept."""

import pytest
import sqlalchemy as sa

from alluse.domain.errors import Conflict
from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.store.prepared import deferred, insert
from alluse.store.schema import accounts, postings, transfers


def test_a_failing_pipelined_write_raises_the_usual_error_and_keeps_nothing(pg: sa.Engine) -> None:
    create_portfolio(pg, "t", "main", "k:main")
    before = _counts(pg)
    bad = insert(postings, ["id", "portfolio_id", "transfer_id", "account_id", "amount_cents"])
    with pytest.raises(sa.exc.IntegrityError), pg.connect() as conn, conn.begin():
        with deferred(conn, 1):
            bad.many(conn, [{"id": 1, "portfolio_id": 1, "transfer_id": 999_999, "account_id": 1, "amount_cents": 5}])
    assert _counts(pg) == before


def test_single_moves_numbered_in_order_and_alerts_follow_on_both_stores(engine: sa.Engine) -> None:
    create_portfolio(engine, "t", "main", "k:main")
    g = groups.open_group(engine, "t", "main", "g1", groups.group_opening(100_000_00))
    gen = g["accounts"]["GEN"]["account_id"]
    a = cash.move_cash(engine, "t", "main", [("d1", cash.deposit(gen, 1_000, group=False))])[0]
    b = cash.move_cash(engine, "t", "main", [("w1", cash.withdrawal(gen, 500))])[0]
    assert b["transfer_number"] == a["transfer_number"] + 1 and b["transfer_id"] > a["transfer_id"]
    replay = cash.move_cash(engine, "t", "main", [("w1", cash.withdrawal(gen, 500))])[0]
    assert replay["replayed"] and replay["transfer_id"] == b["transfer_id"]


def test_a_bulk_unit_of_work_replays_the_keys_it_has_seen_and_applies_the_rest(engine: sa.Engine) -> None:
    # Bulk (>= BULK_REQUESTS): on PostgreSQL the keys are looked up with one array parameter and the
    # unit of work starts with DISCARD PLANS; on SQLite in IN lists of IN_CHUNK.
    create_portfolio(engine, "t", "main", "k:main")
    g = groups.open_group(engine, "t", "main", "g1", groups.group_opening(100_000_00))
    gen = g["accounts"]["GEN"]["account_id"]
    first = [(f"d{i}", cash.deposit(gen, 100 + i, group=False)) for i in range(1_000)]
    applied = cash.move_cash(engine, "t", "main", first)
    again = cash.move_cash(engine, "t", "main", [*first, ("new", cash.deposit(gen, 7, group=False))])
    assert [r["replayed"] for r in again[:-1]] == [True] * 1_000 and "replayed" not in again[-1]
    assert [r["transfer_id"] for r in again[:-1]] == [r["transfer_id"] for r in applied]
    with pytest.raises(Conflict, match="d999"):
        cash.move_cash(engine, "t", "main", [*first[:-1], ("d999", cash.deposit(gen, 1, group=False))])


def _counts(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (transfers, postings, accounts))  # type: ignore[return-value]  # fmt: skip


def test_ids_are_drawn_with_one_lookup_of_the_sequence(pg: sa.Engine) -> None:
    # The sequence is looked up by table and column name in a subquery the server runs once
    # (an InitPlan), not once for every id drawn (ten times the cost of the nextval).
    from alluse.store.ids import sequence_draw

    stmt = sa.select(sequence_draw(transfers, sa.literal(1_000)))
    compiled = stmt.compile(dialect=pg.dialect)
    with pg.connect() as conn:
        explain = conn.exec_driver_sql(f"EXPLAIN (VERBOSE, COSTS OFF) {compiled}", compiled.params)
        plan = "\n".join(r[0] for r in explain)
        ids = conn.execute(stmt).scalar_one()
    draw = next(line for line in plan.splitlines() if "nextval" in line)
    assert "pg_get_serial_sequence" not in draw, plan  # nextval of the subquery's result
    assert len(set(ids)) == 1_000
