"""As of a date means as of it: adding facts dated after D changes no figure as of D, and with no
fact dated later the as-of figures are the cached ones. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from dataclasses import astuple
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alluse.services import groups, lifecycle, reports, tax
from alluse.services.marks import record_marks
from alluse.services.portfolios import create_portfolio
from alluse.services.trades import Fill, FillAction, record_fill, record_fills
from alluse.sim.trading import realize
from alluse.store.asof import account_as_of, latest_day
from alluse.store.schema import accounts, portfolios
from alluse.views import tax as tax_read

PUT = "XYZ   300118P00050000"
D = date(2029, 6, 29)
_n = itertools.count()


def price() -> st.SearchStrategy[str]:
    return st.integers(1, 900_000).map(lambda e4: str(Decimal(e4) / 10_000))


op = st.tuples(
    st.sampled_from(["buy", "sell", "sto_put", "btc_put", "assign_put", "dividend", "fee", "mark", "tax"]),
    st.sampled_from(["A1-GEN", "A1-REV", "A1-COM"]),
    st.integers(1, 300),
    price(),
    st.integers(0, 50_000),
)


class Book:
    """Records generated facts, keeping each one valid (nothing sold that is not held)."""

    def __init__(self, engine: sa.Engine, name: str) -> None:
        self.engine, self.name = engine, name
        self.shares: dict[str, int] = {}
        self.puts: dict[str, int] = {}
        self.n = 0

    def record(self, kind: str, acc: str, q: int, px: str, extra: int, day: date) -> None:
        self.n += 1
        key = f"{kind}{self.n}"
        shares, puts = self.shares.get(acc, 0), self.puts.get(acc, 0)
        f: Fill | None = None
        if kind == "buy":
            f, self.shares[acc] = Fill(acc, FillAction.BTO, "XYZ", q, px, extra % 500, day), shares + q
        elif kind == "sell" and shares:
            q = min(q, shares)
            f, self.shares[acc] = Fill(acc, FillAction.STC, "XYZ", q, px, extra % 500, day), shares - q
        elif kind == "sto_put":
            q = q % 3 + 1
            f, self.puts[acc] = Fill(acc, FillAction.STO, PUT, q, px, extra % 200, day), puts + q
        elif kind in ("btc_put", "assign_put") and puts:
            q = min(q % 3 + 1, puts)
            action = FillAction.BTC if kind == "btc_put" else FillAction.ASSIGN
            f, self.puts[acc] = Fill(acc, action, PUT, q, px if kind == "btc_put" else "0", 0, day), puts - q
            if kind == "assign_put":
                self.shares[acc] = shares + 100 * q
        elif kind == "dividend":
            f = Fill(acc, FillAction.DIVIDEND, "XYZ", amount_cents=extra + 1, trade_date=day)
        elif kind == "fee":
            f = Fill(acc, FillAction.FEE, None, amount_cents=extra % 5_000 + 1, trade_date=day)
        elif kind == "mark" and sum(self.shares.values()):
            record_marks(self.engine, "t", self.name, key, {"XYZ": px}, day)
        elif kind == "tax":
            tax.pay_tax(self.engine, "t", self.name, key, acc, day.year - 1, extra + 1, day)
        if f is not None:
            record_fills(self.engine, "t", self.name, [(key, f)])


def figures(engine: sa.Engine, name: str, day: date) -> dict[str, Any]:
    """Every figure alluse computes for a day."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        pid = conn.execute(sa.select(portfolios.c.id).where(portfolios.c.name == name)).scalar_one()
        rows = conn.execute(
            sa.select(accounts.c.id, accounts.c.name).where(accounts.c.portfolio_id == pid, accounts.c.kind != "EXT")
        ).all()
        for aid, acc in rows:
            st_ = account_as_of(conn, pid, aid, day)
            out[acc] = (
                st_.cash,
                st_.base_capital,
                st_.earmarked,
                st_.positions_value,
                st_.collateral,
                [astuple(lot) for lot in st_.lots],
                astuple(tax_read.post_tax_surplus(conn, pid, aid, day)),
                astuple(tax_read.realized_gain(conn, pid, aid, date(day.year, 1, 1), day)),
                astuple(tax_read.period_pnl(conn, pid, aid, date(day.year, 1, 1), day)),
            )
    out["holdings"] = reports.holdings(engine, name, None, day)
    out["plan"] = lifecycle.plan(engine, name, day)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(op, min_size=1, max_size=10), after=st.lists(op, min_size=1, max_size=6))
def test_facts_dated_after_a_day_change_nothing_as_of_it(engine: sa.Engine, before: list, after: list) -> None:
    name = f"asof{next(_n)}"
    create_portfolio(engine, "t", name, f"{name}:create")
    groups.open_group(engine, "t", name, "g", groups.group_opening(100_000_000))
    book = Book(engine, name)
    for i, o in enumerate(before):
        book.record(*o, D - timedelta(days=3 * (len(before) - 1 - i)))  # the last on D itself
    as_of_d = figures(engine, name, D)
    for i, o in enumerate(after):
        book.record(*o, D + timedelta(days=1 + 2 * i))
    assert figures(engine, name, D) == as_of_d

    # With nothing dated after the day, the as-of figures are the cached (latest) ones.
    with engine.connect() as conn:
        pid = conn.execute(sa.select(portfolios.c.id).where(portfolios.c.name == name)).scalar_one()
        last = latest_day(conn, pid, D)
        cached = conn.execute(
            sa.select(
                accounts.c.id,
                accounts.c.cash_cents,
                accounts.c.base_capital_cents,
                accounts.c.earmarked_cents,
                accounts.c.positions_value_cents,
                accounts.c.collateral_cents,
            ).where(accounts.c.portfolio_id == pid, accounts.c.kind != "EXT")
        ).all()
        for aid, *figs in cached:
            s = account_as_of(conn, pid, aid, last)
            assert [s.cash, s.base_capital, s.earmarked, s.positions_value, s.collateral] == figs


def test_the_worked_fork_ignores_a_fill_dated_after_the_run(engine: sa.Engine, portfolio: str) -> None:
    """§5.1 with a premium dated 2027-01-08 already recorded: a run as of 2026-12-31 forks $52,500.00,
    not $52,748.70."""
    groups.open_group(engine, "t", portfolio, "open", groups.group_opening(25_000_000))
    realize(engine, "t", portfolio, [("gain", "A1-GEN", 7_500_000, date(2026, 11, 13))])
    later = Fill("A1-GEN", FillAction.STO, "XYZ   270115P00050000", 2, "1.25", 130, date(2027, 1, 8))
    assert record_fill(engine, "t", portfolio, "later", later)["cash_cents"] == 24_870
    as_of = date(2026, 12, 31)
    (planned,) = [p for p in lifecycle.plan(engine, portfolio, as_of) if p["rule"] == "GEN_FORK"]
    assert planned["amount_cents"] == 5_250_000
    report = lifecycle.run(engine, "t", portfolio, as_of)
    (fork,) = [a for a in report.applied if a["rule"] == "GEN_FORK"]
    assert fork["amount_cents"] == 5_250_000
    with engine.connect() as conn:
        cash = dict(conn.execute(sa.select(accounts.c.name, accounts.c.cash_cents)).all())
    assert (cash["A1F1-GEN"], cash["A1F1-COM"]) == (2_625_000, 2_625_000)
    assert cash["A1-GEN"] == 17_500_000 + 24_870 - 5_250_000  # the later premium stays in the parent
    held = reports.holdings(engine, portfolio, "A1-GEN", as_of)
    assert held["as_of"] == "2026-12-31" and held["accounts"][0]["lots"] == []
