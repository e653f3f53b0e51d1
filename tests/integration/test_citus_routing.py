"""On Citus, a query that carries its portfolio goes to one shard group: joined on (portfolio_id, id)
and filtered by portfolio_id, Citus plans a single task; the same join without the filter runs on
every shard (still pushed down, because the join is on the distribution column)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from alluse.services import brokers, cash, groups, lifecycle
from alluse.services.configuration import set_value, show
from alluse.services.dashboard import account_page
from alluse.services.earmarks import earmark_report
from alluse.services.journal import journal
from alluse.services.marks import record_marks
from alluse.services.portfolios import create_portfolio
from alluse.services.reports import holdings, monthly, performance_report, quarterly, tax_year
from alluse.services.tax import pay_tax
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.services.verify import verify
from alluse.sim.trading import realize
from alluse.store.db import make_engine
from alluse.views.accounts import account_tree
from alluse.views.tax import account_pnl, account_surplus
from tests.conftest import _truncate_pg

pytestmark = [pytest.mark.postgres, pytest.mark.citus]

PUT = "XYZ   270115P00050000"
ON = date(2026, 11, 13)  # the day simulated gains are realized
DAY = date(2026, 11, 20)

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


def _one_shard_only(engine: sa.Engine) -> sa.Engine:
    """An engine on the same cluster on which any statement Citus splits into several tasks (one per
    shard) fails instead of running."""
    strict = make_engine(engine.url.render_as_string(hide_password=False))

    @sa.event.listens_for(strict, "connect")
    def _strict(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET citus.multi_task_query_log_level = 'error'")
        dbapi_conn.commit()

    return strict


def test_every_query_of_a_portfolios_work_goes_to_one_shard(citus_engine: sa.Engine) -> None:
    """Units of work and per-portfolio reads, with the portfolio named by id: not one statement may
    reach more than one shard group. (Naming a portfolio by its name reads the directory, which asks
    every shard: docs/scaling.md.) A query that filters by an account id alone fails here."""
    _truncate_pg(citus_engine)
    pids = [create_portfolio(citus_engine, "t", n, f"k:{n}")["portfolio_id"] for n in ("alpha", "beta", "gamma")]
    strict = _one_shard_only(citus_engine)
    try:
        for n, pid in enumerate(pids, start=1):
            refs = [f"IBKR:U{n}00{k}" for k in (1, 2, 3)]
            groups.open_group(strict, "t", pid, f"{pid}:a1", groups.group_opening(25_000_000, refs))
            groups.open_group(strict, "t", pid, f"{pid}:a2", groups.group_opening(1_000_000))
            # The pool a fork of A1 draws its two new sleeves from.
            brokers.register(strict, "t", pid, [f"IBKR:U{n}008", f"IBKR:U{n}009"], f"{pid}:reg")
            cash.move_cash(strict, "t", pid, [(f"{pid}:w", cash.withdrawal("A2-GEN", 1_000))])
            moved = cash.move_cash(strict, "t", pid, [(f"{pid}:d", cash.deposit("A2-GEN", 5_000))])
            sto = Fill("A1-GEN", FillAction.STO, PUT, 1, "1.25", trade_date=date(2026, 11, 2))
            record_fills(strict, "t", pid, [(f"{pid}:sto", sto)])
            record_marks(strict, "t", pid, f"{pid}:mark", {PUT: "0.80"}, date(2026, 11, 3))
            realize(strict, "t", pid, [("gain", "A1-GEN", 7_500_000, ON)])
            assert lifecycle.plan(strict, pid, DAY)
            assert lifecycle.run(strict, "t", pid, DAY).applied
            cash.reverse(strict, "t", pid, None, "typo", f"{pid}:rev", number=moved[0]["transfer_number"])
            set_value(strict, "t", pid, "A2-GEN", "template", "conservative", f"{pid}:cfg")
            show(strict, pid, "A2-GEN")
            pay_tax(strict, "t", pid, f"{pid}:tax", "A1-GEN", 2026, 10_000, date(2026, 11, 14))
            account_tree(strict, pid)
            holdings(strict, pid)
            journal(strict, pid)
            account_page(strict, pid, "A1-GEN", today=DAY)
            account_surplus(strict, pid, "A1-GEN", DAY)
            account_pnl(strict, pid, "A1-GEN", date(2026, 1, 1), DAY)
            earmark_report(strict, pid)
            quarterly(strict, pid, 2026)
            monthly(strict, pid, 2026)
            tax_year(strict, pid, 2026)
            performance_report(strict, pid, date(2026, 11, 1), DAY)
    finally:
        strict.dispose()
    assert verify(citus_engine).ok
