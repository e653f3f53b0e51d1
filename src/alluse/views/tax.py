"""The tax ledger read (ALLUSE_RULES §5, §6): realized gains by term, an account's tax year, a period's
pre- and post-tax P&L and the post-tax surplus. Estimates, not tax advice.

The lifecycle reads `post_tax_surplus(conn, portfolio_id, account_id, as_of)` and
`realized_gain(conn, portfolio_id, account_id, start, end)` inside its own transaction; entrypoints
ask `account_surplus` and `account_pnl` (an account of a portfolio, by name or id). All return
integer cents.

Each account is estimated as if it were its own taxpayer (accounts are independent, §9): its tax
year's short- and long-term results are netted IRS-style and taxed at the portfolio's rates. The
household view in the tax-year report nets across all accounts instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput
from alluse.domain.lots import Side, Term, holding_term
from alluse.domain.money import Cents
from alluse.domain.tax import NOTE, TaxRates, YearFigures, estimate
from alluse.store import tax as tax_store
from alluse.store.asof import AccountAsOf, accounts_as_of
from alluse.store.repo import resolve_account
from alluse.store.schema import accounts, fills, lot_closes, tax_payments
from alluse.store.scope import PortfolioRef, resolve_portfolio


@dataclass(frozen=True, slots=True)
class PostTaxSurplus:
    nav: int
    base_capital: int
    unpaid_tax_on_realized: int
    tax_on_unrealized: int
    surplus: int


@dataclass(frozen=True, slots=True)
class RealizedGain:
    short_term: int
    long_term: int
    dividends: int

    @property
    def total(self) -> int:
        """Net realized capital gain (pre-tax); dividends are reported beside it, not in it."""
        return self.short_term + self.long_term


@dataclass(frozen=True, slots=True)
class PeriodPnL:
    """Realized P&L of an account over a period, before and after estimated tax (cents)."""

    realized: int  # net realized capital gain
    dividends: int
    fees: int  # standalone fees (commissions are already inside realized)
    pre_tax: int
    estimated_tax: int  # the period's share of its tax years' estimates (negative when a loss lowers them)
    post_tax: int


def rates(conn: sa.Connection, portfolio_id: int) -> TaxRates:
    return tax_store.load_rates(conn, portfolio_id)


def realized_gain(conn: sa.Connection, portfolio_id: int, account_id: int, start: date, end: date) -> RealizedGain:
    """Realized short- and long-term gain and dividends of closings dated start..end (inclusive)."""
    c = lot_closes.c
    st = lt = 0
    q = (
        sa.select(c.term, sa.func.sum(c.gain_cents))
        .where(
            c.portfolio_id == portfolio_id,
            c.account_id == account_id,
            c.realized.is_(True),
            c.closed_on >= start,
            c.closed_on <= end,
        )
        .group_by(c.term)
    )
    for term, total in conn.execute(q):
        if term == Term.LONG:
            lt = int(total)
        else:
            st = int(total)
    f = fills.c
    div = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(f.cash_cents + f.commission_cents), 0)).where(
            f.portfolio_id == portfolio_id,
            f.account_id == account_id,
            f.action == "DIVIDEND",
            f.trade_date >= start,
            f.trade_date <= end,
        )
    ).scalar_one()
    return RealizedGain(st, lt, int(div))


def year_figures(
    conn: sa.Connection, portfolio_id: int, account_id: int, year: int, through: date | None = None
) -> YearFigures:
    end = min(date(year, 12, 31), through) if through else date(year, 12, 31)
    r = realized_gain(conn, portfolio_id, account_id, date(year, 1, 1), end)
    return YearFigures(r.short_term, r.long_term, r.dividends)


def period_pnl(conn: sa.Connection, portfolio_id: int, account_id: int, start: date, end: date) -> PeriodPnL:
    """Pre- and post-tax realized P&L for start..end. A period's tax is what it adds to its tax year's
    estimate (year to its end minus year to its start), so quarters add up to their year."""
    if end < start:
        raise InvalidInput("the period ends before it starts")
    r = rates(conn, portfolio_id)
    g = realized_gain(conn, portfolio_id, account_id, start, end)
    tax = 0
    for y in range(start.year, end.year + 1):
        s, e = max(start, date(y, 1, 1)), min(end, date(y, 12, 31))
        to_end = estimate(year_figures(conn, portfolio_id, account_id, y, e), r).tax
        before = estimate(year_figures(conn, portfolio_id, account_id, y, s - timedelta(days=1)), r).tax
        tax += to_end - before
    f = fills.c
    fees = -int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(f.cash_cents), 0)).where(
                f.portfolio_id == portfolio_id,
                f.account_id == account_id,
                f.action == "FEE",
                f.trade_date >= start,
                f.trade_date <= end,
            )
        ).scalar_one()
    )
    pre = g.total + g.dividends - fees
    return PeriodPnL(g.total, g.dividends, fees, pre, tax, pre - tax)


def tax_paid(conn: sa.Connection, portfolio_id: int, account_id: int, year: int, through: date | None = None) -> int:
    """Tax paid for `year`, counting payments made on or before `through` when given."""
    t = tax_payments.c
    q = sa.select(sa.func.coalesce(sa.func.sum(t.amount_cents), 0)).where(
        t.portfolio_id == portfolio_id, t.account_id == account_id, t.tax_year == year
    )
    if through is not None:
        q = q.where(t.paid_on <= through)
    return int(conn.execute(q).scalar_one())


def unrealized_figures(state: AccountAsOf) -> YearFigures:
    """Gain of every lot open on the state's day as if closed at its valuation price then, by term."""
    st = lt = 0
    for lot in state.lots:
        gain = lot.value + lot.remaining_cash
        if lot.side == Side.LONG and holding_term(lot.opened_on, state.on) == Term.LONG:
            lt += gain
        else:
            st += gain
    return YearFigures(st, lt, 0)


def post_tax_surplus(conn: sa.Connection, portfolio_id: int, account_id: int, as_of: date) -> PostTaxSurplus:
    """NAV − base capital − unpaid estimated tax on realized gains − estimated tax on unrealized gains.

    Every figure is as of `as_of` (store/asof.py): cash, base capital and the lots open that day, valued
    at their latest prices on or before it; `as_of` also fixes the tax year and the holding periods. Unpaid tax sums every
    tax year through as_of (each floored at zero). Tax on unrealized gains is the extra tax closing
    everything would add to this year's estimate, never below zero (an unrealized loss does not raise
    the surplus).
    """
    return post_tax_surplus_many(conn, portfolio_id, [account_id], as_of)[account_id]


def post_tax_surplus_many(
    conn: sa.Connection, portfolio_id: int, ids: list[int], as_of: date
) -> dict[int, PostTaxSurplus]:
    """`post_tax_surplus` of many accounts of one portfolio (a sweep's candidates), with a few
    statements for all of them instead of a dozen per account."""
    states = accounts_as_of(conn, portfolio_id, ids, as_of)
    r = rates(conn, portfolio_id)
    realized = tax_store.realized_by_year(conn, portfolio_id, list(states), as_of)
    paid = tax_store.paid_by_year(conn, portfolio_id, list(states), as_of)
    out: dict[int, PostTaxSurplus] = {}
    for aid, state in states.items():
        unpaid = 0
        this_year = YearFigures()
        for y, (st, lt, div) in sorted(realized.get(aid, {}).items()):
            fig = YearFigures(st, lt, div)
            if y == as_of.year:
                this_year = fig
            unpaid += max(0, estimate(fig, r).tax - paid.get(aid, {}).get(y, 0))
        with_unrealized = this_year + unrealized_figures(state)
        on_unrealized = max(0, estimate(with_unrealized, r).tax - estimate(this_year, r).tax)
        nav, base = state.nav, state.base_capital
        out[aid] = PostTaxSurplus(nav, base, unpaid, on_unrealized, nav - base - unpaid - on_unrealized)
    return out


class SurplusRecord(TypedDict):
    """The post-tax surplus as `--json` and the API answer it (money in cents; the API shows dollars)."""

    account: str
    as_of: str
    nav_cents: Cents
    base_capital_cents: Cents
    unpaid_tax_on_realized_cents: Cents
    tax_on_unrealized_cents: Cents
    post_tax_surplus_cents: Cents
    note: str


def surplus_record(account: str, as_of: date, s: PostTaxSurplus) -> SurplusRecord:
    return {
        "account": account,
        "as_of": as_of.isoformat(),
        "nav_cents": Cents(s.nav),
        "base_capital_cents": Cents(s.base_capital),
        "unpaid_tax_on_realized_cents": Cents(s.unpaid_tax_on_realized),
        "tax_on_unrealized_cents": Cents(s.tax_on_unrealized),
        "post_tax_surplus_cents": Cents(s.surplus),
        "note": NOTE,
    }


def _account(conn: sa.Connection, portfolio: PortfolioRef, ref: str | int) -> tuple[int, int, str]:
    """The portfolio's id, and the id and name of its account `ref` (by name or id)."""
    pid = resolve_portfolio(conn, portfolio)
    aid = resolve_account(conn, pid, ref)
    a = accounts.c
    return pid, aid, conn.execute(sa.select(a.name).where(a.portfolio_id == pid, a.id == aid)).scalar_one()


def account_surplus(engine: Engine, portfolio: PortfolioRef, ref: str | int, as_of: date) -> tuple[str, PostTaxSurplus]:
    """An account (by name or id) of the portfolio: its name and its post-tax surplus on a day."""
    with engine.connect() as conn:
        pid, aid, name = _account(conn, portfolio, ref)
        return name, post_tax_surplus(conn, pid, aid, as_of)


def account_pnl(
    engine: Engine, portfolio: PortfolioRef, ref: str | int, start: date, end: date
) -> tuple[str, PeriodPnL]:
    """An account (by name or id) of the portfolio: its name and its realized P&L for a period."""
    with engine.connect() as conn:
        pid, aid, name = _account(conn, portfolio, ref)
        return name, period_pnl(conn, pid, aid, start, end)
