"""On Citus, a query that carries its portfolio goes to one shard group: joined on (portfolio_id, id)
and filtered by portfolio_id, Citus plans a single task; the same join without the filter runs on
every shard (still pushed down, because the join is on the distribution column)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from tests.conftest import _truncate_pg

pytestmark = [pytest.mark.postgres, pytest.mark.citus]

JOURNAL = (
    "SELECT t.kind, sum(p.amount_cents) FROM postings p "
    "JOIN transfers t ON t.portfolio_id = p.portfolio_id AND t.id = p.transfer_id {where} GROUP BY t.kind"
)


def _tasks(conn: sa.Connection, sql: str) -> int:
    plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
    return int(re.search(r"Task Count: (\d+)", plan).group(1))  # type: ignore[union-attr]


def test_a_unit_of_work_query_goes_to_one_shard(citus_engine: sa.Engine) -> None:
    _truncate_pg(citus_engine)
    pids = []
    for name in ("alpha", "beta", "gamma"):
        pids.append(create_portfolio(citus_engine, "t", name, f"k:{name}")["portfolio_id"])
        groups.open_group(citus_engine, "t", name, f"{name}:g", groups.group_opening(1_000_000))
        cash.move_cash(citus_engine, "t", name, [(f"{name}:w", cash.withdrawal("A1-GEN", 1_000))])
    with citus_engine.connect() as conn:
        shards = conn.exec_driver_sql(
            "SELECT count(*) FROM citus_shards WHERE table_name = 'transfers'::regclass"
        ).scalar_one()
        assert shards > 1
        for pid in pids:
            assert _tasks(conn, JOURNAL.format(where=f"WHERE p.portfolio_id = {pid}")) == 1
        assert _tasks(conn, JOURNAL.format(where="")) == shards
