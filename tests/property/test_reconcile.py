"""Property: for any sequence of fills, realized + unrealized P&L + dividends − fees reconcile exactly,
to the cent, with the change in NAV; and `verify` agrees with every cached figure."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alluse.services import groups
from alluse.services.marks import record_marks
from alluse.services.portfolios import create_portfolio
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.services.verify import verify
from alluse.store.schema import accounts, fills, lot_closes, lots, portfolios

PUT = "XYZ   300118P00050000"
CALL = "XYZ   300118C00055000"
LEAPS = "XYZ   310117C00040000"
_n = itertools.count()


def price() -> st.SearchStrategy[str]:
    return st.integers(1, 2_000_000).map(lambda e4: str(Decimal(e4) / 10_000))


op = st.one_of(
    st.tuples(st.just("buy"), st.integers(1, 300), price(), st.integers(0, 500)),
    st.tuples(st.just("sell"), st.integers(1, 300), price(), st.integers(0, 500)),
    st.tuples(st.just("sto_put"), st.integers(1, 3), price(), st.integers(0, 200)),
    st.tuples(st.just("btc_put"), st.integers(1, 3), price(), st.integers(0, 200)),
    st.tuples(st.just("assign_put"), st.integers(1, 3), st.just("0"), st.integers(0, 100)),
    st.tuples(st.just("expire_put"), st.integers(1, 3), st.just("0"), st.just(0)),
    st.tuples(st.just("sto_call"), st.integers(1, 3), price(), st.integers(0, 200)),
    st.tuples(st.just("assign_call"), st.integers(1, 3), st.just("0"), st.integers(0, 100)),
    st.tuples(st.just("bto_leaps"), st.integers(1, 2), price(), st.integers(0, 200)),
    st.tuples(st.just("stc_leaps"), st.integers(1, 2), price(), st.integers(0, 200)),
    st.tuples(st.just("dividend"), st.just(0), st.just("0"), st.integers(1, 100_000)),
    st.tuples(st.just("fee"), st.just(0), st.just("0"), st.integers(1, 10_000)),
    st.tuples(st.just("mark"), st.just(0), price(), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.tuples(st.just("buy"), st.integers(1, 500), price(), st.integers(0, 500)), rest=st.lists(op, max_size=25)
)
def test_pnl_reconciles_with_nav(engine: sa.Engine, first: tuple, rest: list[tuple[str, int, str, int]]) -> None:
    ops = [first, *rest]
    name = f"p{next(_n)}"
    create_portfolio(engine, "t", name, f"{name}:create")
    groups.open_group(engine, "t", name, "g", groups.group_opening(100_000_000))
    acc = "A1-GEN"
    shares = short_puts = short_calls = leaps = 0
    dividends = fees = 0
    day = date(2029, 1, 1)
    recorded = 0
    for i, (kind, q, px, extra) in enumerate(ops):
        day += timedelta(days=5)
        f: Fill | None = None
        if kind == "buy":
            f, shares = Fill(acc, FillAction.BTO, "XYZ", q, px, extra, day), shares + q
        elif kind == "sell" and shares - 100 * short_calls > 0:
            q = min(q, shares - 100 * short_calls)
            f, shares = Fill(acc, FillAction.STC, "XYZ", q, px, extra, day), shares - q
        elif kind == "sto_put":
            f, short_puts = Fill(acc, FillAction.STO, PUT, q, px, extra, day), short_puts + q
        elif kind in ("btc_put", "assign_put", "expire_put") and short_puts:
            q = min(q, short_puts)
            action = {"btc_put": FillAction.BTC, "assign_put": FillAction.ASSIGN, "expire_put": FillAction.EXPIRE}[kind]
            f, short_puts = Fill(acc, action, PUT, q, px, extra, day), short_puts - q
            shares += 100 * q if kind == "assign_put" else 0
        elif kind == "sto_call" and shares // 100 - short_calls > 0:
            q = min(q, shares // 100 - short_calls)
            f, short_calls = Fill(acc, FillAction.STO, CALL, q, px, extra, day), short_calls + q
        elif kind == "assign_call" and short_calls:
            q = min(q, short_calls)
            f, short_calls, shares = (
                Fill(acc, FillAction.ASSIGN, CALL, q, px, extra, day),
                short_calls - q,
                shares - 100 * q,
            )
        elif kind == "bto_leaps":
            f, leaps = Fill(acc, FillAction.BTO, LEAPS, q, px, extra, day), leaps + q
        elif kind == "stc_leaps" and leaps:
            q = min(q, leaps)
            f, leaps = Fill(acc, FillAction.STC, LEAPS, q, px, extra, day), leaps - q
        elif kind == "dividend":
            f, dividends = Fill(acc, FillAction.DIVIDEND, "XYZ", amount_cents=extra, trade_date=day), dividends + extra
        elif kind == "fee":
            f, fees = Fill(acc, FillAction.FEE, None, amount_cents=extra, trade_date=day), fees + extra
        elif kind == "mark" and shares:
            record_marks(engine, "t", name, f"m{i}", {"XYZ": px}, day)
        if f is not None:
            record_fills(engine, "t", name, [(f"f{i}", f)])
            recorded += 1
    event(f"fills recorded: {min(recorded, 10)}+" if recorded >= 10 else f"fills recorded: {recorded}")

    with engine.connect() as conn:
        pid = conn.execute(sa.select(portfolios.c.id).where(portfolios.c.name == name)).scalar_one()
        a = conn.execute(sa.select(accounts).where(accounts.c.portfolio_id == pid, accounts.c.name == acc)).one()
        c = lot_closes.c
        realized = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(c.gain_cents), 0)).where(c.account_id == a.id, c.realized.is_(True))
        ).scalar_one()
        remaining_cash = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(lots.c.remaining_cash_cents), 0)).where(lots.c.account_id == a.id)
        ).scalar_one()
        fill_fees = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(fills.c.commission_cents), 0)).where(
                fills.c.account_id == a.id, fills.c.action.in_(["DIVIDEND"])
            )
        ).scalar_one()
    nav_change = a.cash_cents + a.positions_value_cents - 40_000_000
    unrealized = a.positions_value_cents + remaining_cash
    assert nav_change == realized + unrealized + dividends - fill_fees - fees
    assert a.base_capital_cents == 40_000_000
    report = verify(engine)
    assert report.ok, report.problems
