"""Pooled PostgreSQL connections: one whose server session has ended is replaced before use, and a
live one is handed out without a round trip (store/db.make_engine)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.store.db import make_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def own(pg: sa.Engine) -> Iterator[sa.Engine]:
    """An engine of its own on the test database, whose sessions the test may end."""
    engine = make_engine(pg.url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _end_session(admin: sa.Engine, pid: int) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        for _ in range(500):  # until the server has closed it
            conn.rollback()  # pg_stat_activity is read once per transaction
            if not conn.exec_driver_sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}").first():
                return
            time.sleep(0.01)
    raise AssertionError(f"session {pid} still there")


def test_a_pooled_connection_whose_session_ended_is_replaced(pg: sa.Engine, own: sa.Engine) -> None:
    create_portfolio(own, "t", "main", "k:main")
    gen = groups.open_group(own, "t", "main", "g1", groups.group_opening(100_000_00))["accounts"]["GEN"]["account_id"]
    first = _backend(own)
    _end_session(pg, first)
    # The unit of work takes the pooled connection: it must get a live one, not fail.
    moved = cash.move_cash(own, "t", "main", [("d1", cash.deposit(gen, 1_000, group=False))])
    assert moved[0]["amount_cents"] == 1_000
    assert _backend(own) != first


def test_a_live_pooled_connection_is_handed_out_without_a_round_trip(pg: sa.Engine, own: sa.Engine) -> None:
    with own.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    # Returned to the pool: the server's last statement of that session is the pool's ROLLBACK.
    with own.connect() as conn:
        with pg.connect() as admin:
            last = admin.exec_driver_sql(f"SELECT query FROM pg_stat_activity WHERE pid = {pid}").scalar_one()
        assert int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) == pid
    assert last == "ROLLBACK"
