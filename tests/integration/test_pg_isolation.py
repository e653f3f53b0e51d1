"""Row-level security: through the application's own non-superuser role, a unit of work scoped to one
portfolio can neither read nor write another portfolio's rows, whatever SQL it sends."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.errors import Conflict, PermissionDenied
from alluse.services import brokers, cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.services.verify import verify
from alluse.store.schema import metadata
from alluse.views.accounts import account_tree

pytestmark = pytest.mark.postgres

PUT = "XYZ   270115P00050000"
# brokerage_numbers is read across portfolios on purpose (which portfolio holds which number); its own
# test is below.
SCOPED = sorted(t.name for t in metadata.tables.values() if "portfolio_id" in t.c and t.name != "brokerage_numbers")


def _two_portfolios(engine: sa.Engine) -> tuple[int, int]:
    ids = []
    for n, name in enumerate(("alpha", "beta"), start=1):
        ids.append(create_portfolio(engine, "t", name, f"k:{name}")["portfolio_id"])
        groups.open_group(
            engine, "t", name, f"{name}:g", groups.group_opening(1_000_000, [f"IBKR:U{n}00{k}" for k in (1, 2, 3)])
        )
        cash.move_cash(engine, "t", name, [(f"{name}:w", cash.withdrawal("A1-GEN", 10_000))])
        # A short put that expires: instruments, fills, lots, the tax ledger and positions get rows too.
        sto = Fill("A1-GEN", FillAction.STO, PUT, 1, "1.25", trade_date=date(2027, 1, 8))
        record_fills(
            engine, "t", name, [(f"{name}:sto", sto), (f"{name}:exp", Fill("A1-GEN", FillAction.EXPIRE, PUT, 1))]
        )
    return ids[0], ids[1]


def _scope(conn: sa.Connection, pid: int | None) -> None:
    conn.exec_driver_sql(f"SET LOCAL alluse.portfolio_id = '{pid or ''}'")


def test_the_app_role_is_an_ordinary_role(pg: sa.Engine, pg_app_engine: sa.Engine) -> None:
    with pg_app_engine.connect() as conn:
        su, bypass = conn.exec_driver_sql(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).one()
        assert (su, bypass) == (False, False)
        for table in [*SCOPED, "portfolios"]:
            assert conn.exec_driver_sql("SELECT row_security_active(%(t)s)", {"t": table}).scalar_one(), table


def test_services_work_under_the_app_role(pg: sa.Engine, pg_app_engine: sa.Engine) -> None:
    alpha, beta = _two_portfolios(pg_app_engine)
    tree = account_tree(pg_app_engine, "alpha")
    assert tree["groups"][0]["accounts"][0]["cash_cents"] == 400_000 - 10_000 + 12_500  # the put premium
    # The one-to-one brokerage mapping still holds across portfolios the role cannot read.
    with pytest.raises(Conflict, match="already registered"):
        brokers.register(pg_app_engine, "t", "beta", ["IBKR:U1002"], "steal")
    with pytest.raises(Conflict, match="already exists"):
        create_portfolio(pg_app_engine, "t", "alpha", "k:other")
    # verify needs every row: under row-level security it refuses rather than report on a slice.
    with pytest.raises(PermissionDenied, match="owner role"):
        verify(pg_app_engine)
    assert verify(pg).ok
    with pg.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(DISTINCT portfolio_id) FROM postings").scalar_one() == 2


def test_hand_written_sql_sees_only_the_scoped_portfolio(pg: sa.Engine, pg_app_engine: sa.Engine) -> None:
    alpha, beta = _two_portfolios(pg)
    with pg.connect() as conn:
        totals = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in SCOPED}
    populated = {t for t, n in totals.items() if n > 0}
    assert populated >= {"accounts", "postings", "transfers", "audit_log", "fills", "lots", "lot_closes", "positions"}
    with pg_app_engine.connect() as conn:
        # Unscoped: nothing at all.
        for t in [*SCOPED, "portfolios"]:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() == 0, t
        conn.rollback()
        _scope(conn, alpha)
        for t in populated:
            pids = set(conn.exec_driver_sql(f"SELECT DISTINCT portfolio_id FROM {t}").scalars())
            assert pids == {alpha}, t
        assert list(conn.exec_driver_sql("SELECT id FROM portfolios").scalars()) == [alpha]
        # Filtering by the other portfolio's id finds nothing; the directory shows names only.
        assert conn.exec_driver_sql(f"SELECT count(*) FROM accounts WHERE portfolio_id = {beta}").scalar_one() == 0
        assert set(conn.exec_driver_sql("SELECT name FROM portfolio_directory").scalars()) == {"alpha", "beta"}
        # Updates and deletes aimed at the other portfolio touch no row.
        assert conn.exec_driver_sql(f"UPDATE accounts SET cash_cents = 0 WHERE portfolio_id = {beta}").rowcount == 0
        assert conn.exec_driver_sql(f"DELETE FROM account_config WHERE portfolio_id = {beta}").rowcount == 0
        conn.rollback()


def _app_fails(engine: sa.Engine, pid: int, sql: str, match: str) -> None:
    with engine.connect() as conn:
        _scope(conn, pid)
        with pytest.raises(sa.exc.DBAPIError, match=match):
            conn.exec_driver_sql(sql)
        conn.rollback()


def test_writes_into_another_portfolio_are_refused(pg: sa.Engine, pg_app_engine: sa.Engine) -> None:
    alpha, beta = _two_portfolios(pg)
    with pg.connect() as conn:
        beta_account = conn.exec_driver_sql(
            f"SELECT id FROM accounts WHERE portfolio_id = {beta} AND kind = 'GEN'"
        ).scalar_one()
        alpha_transfer = conn.exec_driver_sql(
            f"SELECT max(id) FROM transfers WHERE portfolio_id = {alpha}"
        ).scalar_one()
        before = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in SCOPED}
    rls = "row-level security"
    _app_fails(
        pg_app_engine,
        alpha,
        f"INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) "
        f"VALUES ({beta}, {alpha_transfer}, {beta_account}, 100)",
        rls,
    )
    _app_fails(
        pg_app_engine,
        alpha,
        f"INSERT INTO audit_log VALUES ({beta}, 99, now(), 'x', 'x', 'x', 'x', 'x', NULL, 'x', 'x')",
        rls,
    )
    # Citus refuses to move a row to another shard group before any policy is asked.
    moved = f"{rls}|modifying the partition value of rows is not allowed"
    _app_fails(pg_app_engine, alpha, f"UPDATE accounts SET portfolio_id = {beta} WHERE portfolio_id = {alpha}", moved)
    # The journal and the audit log are append-only for the application, even in its own portfolio.
    _app_fails(pg_app_engine, alpha, "DELETE FROM postings", "permission denied")
    _app_fails(pg_app_engine, alpha, "UPDATE audit_log SET actor = 'x'", "permission denied")
    # Partitions are reachable only through their parent (and its policy).
    _app_fails(pg_app_engine, alpha, "SELECT * FROM postings_p000", "permission denied")
    with pg.connect() as conn:
        after = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in SCOPED}
    assert after == before
    assert verify(pg).ok


def test_brokerage_numbers_are_read_across_portfolios_and_written_only_for_its_own(
    pg: sa.Engine, pg_app_engine: sa.Engine
) -> None:
    alpha, beta = _two_portfolios(pg)
    with pg_app_engine.connect() as conn:
        _scope(conn, alpha)
        held = dict(conn.exec_driver_sql("SELECT number, portfolio_id FROM brokerage_numbers").all())
        conn.rollback()
    # Every registration, whichever portfolio holds it (that is what refusing a taken number needs).
    assert held == {f"U{n}00{k}": pid for n, pid in ((1, alpha), (2, beta)) for k in (1, 2, 3)}
    rls = "row-level security"
    _app_fails(pg_app_engine, alpha, f"INSERT INTO brokerage_numbers VALUES ('IBKR', 'U9', {beta})", rls)
    # A number another portfolio holds is refused by the key, whoever asks, even past the application's
    # own check (two units of work racing for it).
    _app_fails(
        pg_app_engine, alpha, f"INSERT INTO brokerage_numbers VALUES ('IBKR', 'U2001', {alpha})", "duplicate key"
    )
    _app_fails(pg_app_engine, alpha, "DELETE FROM brokerage_numbers", "permission denied")
    _app_fails(pg_app_engine, alpha, f"UPDATE brokerage_numbers SET portfolio_id = {alpha}", "permission denied")
    assert verify(pg).ok
