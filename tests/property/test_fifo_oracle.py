"""Lots closed first in, first out, to the cent, checked against a FIFO written here from the rules
(ALLUSE_RULES §6) with exact fractions: the same facts booked one per unit of work and all in one
import close the same lots with the same cash, gain and holding term, and realized gains plus what
the open lots still carry add up to the cash of every trade. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from alluse.services import groups
from alluse.services.portfolios import create_portfolio
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.store.schema import accounts, instruments, lot_closes, lots, portfolios

PUT = "XYZ   310117P00050000"  # expires after every generated date
START = date(2027, 1, 4)
_n = itertools.count()

op = st.tuples(
    st.sampled_from(["buy", "buy", "sell", "sto_put", "btc_put"]),
    st.sampled_from(["A1-GEN", "A1-COM"]),
    st.integers(1, 400),  # quantity (shares; contracts are taken modulo 4)
    st.integers(1, 50_000),  # price in cents: whole cents, so a trade's gross is exact
    st.integers(0, 999),  # commission in cents
    st.integers(0, 60),  # days after the fact before
)


def _facts(ops: list[tuple[str, str, int, int, int, int]]) -> list[Fill]:
    """The generated operations as valid facts: nothing closed that is not open."""
    held: dict[tuple[str, str], int] = {}
    day, out = START, []
    for kind, acc, q, cents, commission, gap in ops:
        day += timedelta(days=gap)
        price = f"{cents // 100}.{cents % 100:02d}"
        if kind == "buy":
            out.append(Fill(acc, FillAction.BTO, "XYZ", q, price, commission, day))
            held[acc, "XYZ"] = held.get((acc, "XYZ"), 0) + q
        elif kind == "sell" and held.get((acc, "XYZ")):
            q = min(q, held[acc, "XYZ"])
            out.append(Fill(acc, FillAction.STC, "XYZ", q, price, commission, day))
            held[acc, "XYZ"] -= q
        elif kind == "sto_put":
            q = q % 4 + 1
            out.append(Fill(acc, FillAction.STO, PUT, q, price, commission, day))
            held[acc, PUT] = held.get((acc, PUT), 0) + q
        elif kind == "btc_put" and held.get((acc, PUT)):
            q = min(q % 4 + 1, held[acc, PUT])
            out.append(Fill(acc, FillAction.BTC, PUT, q, price, commission, day))
            held[acc, PUT] -= q
    return out


@dataclass
class _Lot:
    opened_on: date
    units: int
    cash: int  # what is left of the opening's cash


def _half_even(x: Fraction) -> int:
    return round(x)  # a Fraction rounds half to even


def _long_term(opened_on: date, closed_on: date) -> bool:
    """Held more than one year (a lot opened on Feb 29 has its year end on Feb 28)."""
    try:
        year_end = opened_on.replace(year=opened_on.year + 1)
    except ValueError:
        year_end = date(opened_on.year + 1, 2, 28)
    return closed_on > year_end


def oracle(facts: list[Fill]) -> tuple[list[tuple], int]:
    """Every closing as (account, symbol, units, day, open part, close part, gain, term), and the
    cash the open lots still carry."""
    book: dict[tuple[str, str], list[_Lot]] = {}
    closes = []
    for f in facts:
        assert isinstance(f.account, str) and f.symbol is not None
        mult = 1 if f.symbol == "XYZ" else 100
        gross = f.quantity * int(f.price.replace(".", "")) * mult
        opens = f.action in (FillAction.BTO, FillAction.STO)
        # A long lot carries what the purchase paid; a short one the premium received.
        cash = (-gross if f.action in (FillAction.BTO, FillAction.BTC) else gross) - f.commission_cents
        lots_here = book.setdefault((f.account, f.symbol), [])
        if opens:
            lots_here.append(_Lot(f.trade_date, f.quantity, cash))
            continue
        # The oldest lots first; the closing's cash shared by units, the last lot taking the rest.
        taken, left = [], f.quantity
        for lot in lots_here:
            if left == 0:
                break
            k = min(left, lot.units)
            taken.append((lot, k))
            left -= k
        assert left == 0
        cash_left, units_left = cash, f.quantity
        for lot, k in taken:
            close_part = _half_even(Fraction(cash_left * k, units_left))
            cash_left, units_left = cash_left - close_part, units_left - k
            open_part = _half_even(Fraction(lot.cash * k, lot.units))
            lot.cash, lot.units = lot.cash - open_part, lot.units - k
            short = f.symbol != "XYZ"  # short option premium is short-term whatever the holding
            term = "LONG" if not short and _long_term(lot.opened_on, f.trade_date) else "SHORT"
            closes.append((f.account, f.symbol, k, f.trade_date, open_part, close_part, open_part + close_part, term))
        book[f.account, f.symbol] = [lot for lot in lots_here if lot.units]
    return closes, sum(lot.cash for held in book.values() for lot in held)


def _booked(engine: sa.Engine, name: str) -> tuple[list[tuple], int]:
    """What alluse closed, in the order it closed it, and the cash its open lots still carry."""
    c, lo, a, i = lot_closes.c, lots.c, accounts.c, instruments.c
    with engine.connect() as conn:
        pid = conn.execute(sa.select(portfolios.c.id).where(portfolios.c.name == name)).scalar_one()
        rows = conn.execute(
            sa.select(
                a.name, i.symbol, c.quantity, c.closed_on, c.open_cash_cents, c.close_cash_cents, c.gain_cents, c.term
            )  # fmt: skip
            .join(lots, (lo.portfolio_id == c.portfolio_id) & (lo.id == c.lot_id))
            .join(accounts, (a.portfolio_id == c.portfolio_id) & (a.id == c.account_id))
            .join(instruments, (i.portfolio_id == lo.portfolio_id) & (i.id == lo.instrument_id))
            .where(c.portfolio_id == pid)
            .order_by(c.id)
        ).all()
        still_open = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(lo.remaining_cash_cents), 0)).where(
                lo.portfolio_id == pid, lo.remaining > 0
            )
        ).scalar_one()
    return [(*r[:7], str(r[7])) for r in rows], int(still_open)


def _portfolio(engine: sa.Engine) -> str:
    name = f"fifo{next(_n)}"
    create_portfolio(engine, "t", name, f"{name}:create")
    groups.open_group(engine, "t", name, "g", groups.group_opening(100_000_000))
    return name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=20))
def test_lots_close_as_a_fifo_written_from_the_rules_closes_them(engine: sa.Engine, ops: list) -> None:
    facts = _facts(ops)
    assume(facts)
    one_by_one, at_once = _portfolio(engine), _portfolio(engine)
    for n, f in enumerate(facts):
        record_fills(engine, "t", one_by_one, [(f"f{n}", f)])
    record_fills(engine, "t", at_once, [(f"f{n}", f) for n, f in enumerate(facts)])

    expected, open_cash = oracle(facts)
    assert _booked(engine, one_by_one) == (expected, open_cash)
    assert _booked(engine, at_once) == (expected, open_cash)
    # Conservation: what was realized plus what the open lots carry is every trade's cash.
    traded = sum(
        (-1 if f.action in (FillAction.BTO, FillAction.BTC) else 1)
        * f.quantity
        * int(f.price.replace(".", ""))
        * (1 if f.symbol == "XYZ" else 100)
        - f.commission_cents
        for f in facts
    )
    assert sum(close[6] for close in expected) + open_cash == traded
