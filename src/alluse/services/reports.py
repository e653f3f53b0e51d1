"""Reports (ALLUSE_RULES §8): holdings with unrealized P&L, weekly, monthly, quarterly, the tax year,
an audit-ready CSV of realized gains per lot, and time-weighted performance. Read-only; figures are
integer cents. Every tax figure is an estimate, not tax advice (`NOTE`)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import IO, Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind
from alluse.domain.booking import FillAction
from alluse.domain.errors import InvalidInput
from alluse.domain.instruments import LEAPS_MIN_DAYS, InstrumentKind, price_text
from alluse.domain.lots import Side, Term, holding_term
from alluse.domain.money import Cents, cents_to_decimal
from alluse.domain.tax import NOTE, TaxRates, YearFigures, estimate
from alluse.services.history import nav_series, performance
from alluse.services.trades import week_start
from alluse.store.asof import account_as_of, latest_day
from alluse.store.repo import resolve_account
from alluse.store.schema import accounts, fills, instruments, lot_closes, lots, tax_payments, weeks
from alluse.store.scope import resolve_portfolio
from alluse.views.tax import rates, year_figures

WASH_DAYS = 30
_BP = Decimal("0.000001")  # returns are shown to a hundredth of a basis point
TRADE_ACTIONS = tuple(a for a in FillAction if a not in (FillAction.DIVIDEND, FillAction.FEE))
# Calendar years a report accepts (a two-digit year is a typo, not the year 27), and the longest range.
FIRST_YEAR, LAST_YEAR, MAX_YEARS = 1901, 2999, 200


class HeldLot(TypedDict):
    lot_id: int
    symbol: str
    side: str
    opened_on: str
    quantity: int
    basis_cents: Cents
    price: str
    value_cents: Cents
    unrealized_cents: Cents
    term: str


class AccountHoldings(TypedDict):
    account: str
    cash_cents: Cents
    positions_value_cents: Cents
    nav_cents: Cents
    collateral_cents: Cents
    unrealized_cents: Cents
    lots: list[HeldLot]


class Holdings(TypedDict):
    as_of: str
    accounts: list[AccountHoldings]


class Week(TypedDict):
    week_start: str
    trades: int
    income_cents: Cents
    predicted: str | None
    confirmed: str | None
    correct: bool | None  # None until the week has both


class Weekly(TypedDict):
    weeks: list[Week]
    predicted_and_confirmed: int
    correct: int


class Hits(TypedDict):
    correct: int
    weeks: int


class WeekAccuracy(TypedDict):
    weeks: int
    correct: int
    by_predicted: dict[str, Hits]  # week type -> how often its prediction was right


class Month(TypedDict):
    month: str
    income_cents: Cents
    reinvested_cents: Cents
    estimated_tax_cents: Cents
    growth_cents: dict[str, int]  # account name -> cents (the API converts these by name)


class Monthly(TypedDict):
    year: int
    months: list[Month]
    tax_estimated_ytd_cents: Cents
    note: str


class QuarterRow(TypedDict):
    quarter: str
    account: str
    short_term_cents: Cents
    long_term_cents: Cents
    dividends_cents: Cents
    net_realized_cents: Cents
    estimated_tax_ytd_cents: Cents


class Quarterly(TypedDict):
    year: int
    rows: list[QuarterRow]
    note: str
    not_built: str


class TermSums(TypedDict):
    gains_cents: Cents
    losses_cents: Cents
    net_cents: Cents
    closes: int


class RatesBps(TypedDict):
    short_term: int
    long_term: int
    dividend: int


class WashSales(TypedDict):
    closes: int
    loss_cents: Cents


class AccountTax(TypedDict):
    account: str
    short_term_cents: Cents
    long_term_cents: Cents
    dividends_cents: Cents
    estimated_tax_cents: Cents
    paid_cents: Cents


class TaxYear(TypedDict):
    year: int
    note: str
    rates_bps: RatesBps
    short_term: TermSums
    long_term: TermSums
    dividends_cents: Cents
    taxable_short_term_cents: Cents
    taxable_long_term_cents: Cents
    net_capital_loss_cents: Cents
    estimated_tax_cents: Cents
    paid_cents: Cents
    unpaid_cents: Cents
    wash_sale_flagged: WashSales
    accounts: list[AccountTax]


class TaxYearsTotal(TypedDict):
    short_term: TermSums
    long_term: TermSums
    dividends_cents: Cents
    estimated_tax_cents: Cents
    paid_cents: Cents
    unpaid_cents: Cents


class TaxYears(TypedDict):
    from_year: int
    to_year: int
    note: str
    total: TaxYearsTotal
    years: list[TaxYear]


class RealizedRow(TypedDict):
    """One line of the audit-ready realized-gains file: amounts already as dollars (text)."""

    account: str
    symbol: str
    side: str
    quantity: int
    date_acquired: str
    date_sold: str
    proceeds: str
    cost_basis: str
    gain: str
    term: str
    wash_sale_flag: str
    lot_id: int
    fill_id: int
    note: str


class AccountPerformance(TypedDict):
    account: str
    start_nav_cents: Cents
    end_nav_cents: Cents
    flows_cents: Cents
    twr: str
    max_drawdown: str
    series: list[tuple[str, int, int]]  # (day, NAV, flow) in cents


class Performance(TypedDict):
    start: str
    end: str
    accounts: list[AccountPerformance]


def check_years(first: int, last: int | None = None) -> None:
    """Refuse a year outside FIRST_YEAR–LAST_YEAR, or a range that runs backwards or is too long."""
    for y in (first, last if last is not None else first):
        if not FIRST_YEAR <= y <= LAST_YEAR:
            raise InvalidInput(f"year must be a four-digit year between {FIRST_YEAR} and {LAST_YEAR}, got {y}")
    if last is not None and last < first:
        raise InvalidInput(f"the range of years runs backwards: {first}-{last}")
    if last is not None and last - first + 1 > MAX_YEARS:
        raise InvalidInput(f"at most {MAX_YEARS} years in one report, got {last - first + 1}")


def _accounts(conn: sa.Connection, pid: int, account: str | None) -> list[tuple[int, str]]:
    a = accounts.c
    if account:
        aid = resolve_account(conn, pid, account)
        return [(aid, conn.execute(sa.select(a.name).where(a.id == aid)).scalar_one())]
    return [
        (r.id, r.name)
        for r in conn.execute(
            sa.select(a.id, a.name).where(a.portfolio_id == pid, a.kind != AccountKind.EXT).order_by(a.id)
        )
    ]


# --- holdings ------------------------------------------------------------------------------------


def holdings(
    engine: Engine, portfolio: str | int | None, account: str | None = None, as_of: date | None = None
) -> Holdings:
    """Open lots with their value and unrealized P&L, and per-account NAV, as of a day: only facts
    dated on or before it count, positions at their latest prices then. Default: today, or the latest
    date a recorded fact carries if that is later (so every recorded fact shows)."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        as_of = as_of or latest_day(conn, pid, date.today())
        accs = _accounts(conn, pid, account)
        out: list[AccountHoldings] = []
        for aid, name in accs:
            st = account_as_of(conn, aid, as_of)
            rows: list[HeldLot] = []
            for lot in st.lots:
                term = Term.SHORT if lot.side == Side.SHORT else holding_term(lot.opened_on, as_of)
                rows.append(
                    {
                        "lot_id": lot.lot_id,
                        "symbol": lot.symbol,
                        "side": lot.side,
                        "opened_on": lot.opened_on.isoformat(),
                        "quantity": lot.remaining,
                        "basis_cents": Cents(-lot.remaining_cash),
                        "price": price_text(lot.price_e4),
                        "value_cents": Cents(lot.value),
                        "unrealized_cents": Cents(lot.value + lot.remaining_cash),
                        "term": term,
                    }
                )
            out.append(
                {
                    "account": name,
                    "cash_cents": Cents(st.cash),
                    "positions_value_cents": Cents(st.positions_value),
                    "nav_cents": Cents(st.nav),
                    "collateral_cents": Cents(st.collateral),
                    # Per-lot figures are rounded per lot; the account figure is exact against its NAV.
                    "unrealized_cents": Cents(st.positions_value + sum(lot.remaining_cash for lot in st.lots)),
                    "lots": rows,
                }
            )
    return {"as_of": as_of.isoformat(), "accounts": out}


# --- weekly --------------------------------------------------------------------------------------


def _income_by(conn: sa.Connection, pid: int, start: date, end: date, bucket) -> dict[Any, int]:  # type: ignore[no-untyped-def]
    c, f = lot_closes.c, fills.c
    out: dict[Any, int] = {}
    for on, gain in conn.execute(
        sa.select(c.closed_on, c.gain_cents).where(
            c.portfolio_id == pid, c.realized.is_(True), c.closed_on >= start, c.closed_on <= end
        )
    ):
        out[bucket(on)] = out.get(bucket(on), 0) + gain
    for on, cash in conn.execute(
        sa.select(f.trade_date, f.cash_cents).where(
            f.portfolio_id == pid, f.action == FillAction.DIVIDEND, f.trade_date >= start, f.trade_date <= end
        )
    ):
        out[bucket(on)] = out.get(bucket(on), 0) + cash
    return out


def weekly(engine: Engine, portfolio: str | int | None, start: date, end: date) -> Weekly:
    """Per week (Monday start): trades, income (realized gains + dividends), predicted and confirmed type."""
    if start > end:
        raise InvalidInput(f"--from {start} is after --to {end}")
    start, f, w = week_start(start), fills.c, weeks.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        trades: dict[date, int] = dict(
            conn.execute(
                sa.select(f.week_start, sa.func.count())
                .where(f.portfolio_id == pid, f.action.in_(TRADE_ACTIONS), f.trade_date >= start, f.trade_date <= end)
                .group_by(f.week_start)
            ).all()
        )
        income = _income_by(conn, pid, start, end, week_start)
        types = {
            r.week_start: (r.predicted, r.confirmed)
            for r in conn.execute(
                sa.select(w.week_start, w.predicted, w.confirmed).where(
                    w.portfolio_id == pid, w.week_start >= start, w.week_start <= end
                )
            )
        }
    rows: list[Week] = []
    day = start
    while day <= end:
        pred, conf = types.get(day, (None, None))
        rows.append(
            {
                "week_start": day.isoformat(),
                "trades": trades.get(day, 0),
                "income_cents": Cents(income.get(day, 0)),
                "predicted": pred,
                "confirmed": conf,
                "correct": None if pred is None or conf is None else pred == conf,
            }
        )
        day += timedelta(days=7)
    judged = [r for r in rows if r["correct"] is not None]
    hits = sum(1 for r in judged if r["correct"])
    return {"weeks": rows, "predicted_and_confirmed": len(judged), "correct": hits}


def week_accuracy(engine: Engine, portfolio: str | int | None) -> WeekAccuracy:
    """How often the predicted week type was right, over every week that has both, by type."""
    w = weeks.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        rows = conn.execute(
            sa.select(w.predicted, w.confirmed).where(
                w.portfolio_id == pid, w.predicted.is_not(None), w.confirmed.is_not(None)
            )
        ).all()
    by_type: dict[str, list[int]] = {}
    for pred, conf in rows:
        hit = by_type.setdefault(pred, [0, 0])
        hit[0] += pred == conf
        hit[1] += 1
    return {
        "weeks": len(rows),
        "correct": sum(h for h, _ in by_type.values()),
        "by_predicted": {k: {"correct": h, "weeks": n} for k, (h, n) in sorted(by_type.items())},
    }


# --- monthly and quarterly -----------------------------------------------------------------------


def _year_figures_household(conn: sa.Connection, pid: int, start: date, end: date) -> YearFigures:
    c, f = lot_closes.c, fills.c
    st = lt = 0
    for term, total in conn.execute(
        sa.select(c.term, sa.func.sum(c.gain_cents))
        .where(c.portfolio_id == pid, c.realized.is_(True), c.closed_on >= start, c.closed_on <= end)
        .group_by(c.term)
    ):
        if term == Term.LONG:
            lt = int(total)
        else:
            st = int(total)
    div = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(f.cash_cents + f.commission_cents), 0)).where(
            f.portfolio_id == pid, f.action == FillAction.DIVIDEND, f.trade_date >= start, f.trade_date <= end
        )
    ).scalar_one()
    return YearFigures(st, lt, int(div))


def _month_end(year: int, month: int) -> date:
    return (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)


def monthly(engine: Engine, portfolio: str | int | None, year: int) -> Monthly:
    """Per month: income (realized + dividends), reinvestment (cash put into shares and LEAPS), estimated
    tax accrued that month (household netting, year to date), and growth per account (NAV change less
    flows)."""
    check_years(year)
    f, i = fills.c, instruments.c
    start, end = date(year, 1, 1), date(year, 12, 31)
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        r = rates(conn, pid)
        income = _income_by(conn, pid, start, end, lambda d: d.month)
        reinvest: dict[int, int] = {}
        for on, cash, kind, pc, expiry in conn.execute(
            sa.select(f.trade_date, f.cash_cents, i.kind, i.put_call, i.expiry)
            .join(instruments, sa.and_(i.portfolio_id == f.portfolio_id, i.id == f.instrument_id))
            .where(f.portfolio_id == pid, f.action == FillAction.BTO, f.trade_date >= start, f.trade_date <= end)
        ):
            if kind == InstrumentKind.STOCK or (pc == "C" and (expiry - on).days >= LEAPS_MIN_DAYS):
                reinvest[on.month] = reinvest.get(on.month, 0) - cash
        tax_ytd, accrued = 0, list[int]()
        for m in range(1, 13):
            ytd = estimate(_year_figures_household(conn, pid, start, _month_end(year, m)), r).tax
            accrued.append(ytd - tax_ytd)
            tax_ytd = ytd
        growth: dict[str, list[int]] = {}
        for aid, name in _accounts(conn, pid, None):
            series = nav_series(conn, aid, start - timedelta(days=1), end)
            by_month = [0] * 12
            for prev, d in zip(series, series[1:], strict=False):
                by_month[d.on.month - 1] += d.nav - prev.nav - d.flow
            growth[name] = by_month
    months: list[Month] = [
        {
            "month": f"{year}-{m:02d}",
            "income_cents": Cents(income.get(m, 0)),
            "reinvested_cents": Cents(reinvest.get(m, 0)),
            "estimated_tax_cents": Cents(accrued[m - 1]),
            "growth_cents": {name: g[m - 1] for name, g in growth.items()},
        }
        for m in range(1, 13)
    ]
    return {"year": year, "months": months, "tax_estimated_ytd_cents": Cents(tax_ytd), "note": NOTE}


def quarterly(engine: Engine, portfolio: str | int | None, year: int) -> Quarterly:
    """The tax ledger by quarter and account: realized short/long-term, dividends, and each account's
    estimated tax for the year to the quarter's end."""
    check_years(year)
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        r = rates(conn, pid)
        c, f = lot_closes.c, fills.c
        rows: list[QuarterRow] = []
        for aid, name in _accounts(conn, pid, None):
            for q in range(4):
                qs, qe = date(year, 3 * q + 1, 1), _month_end(year, 3 * q + 3)
                fig = YearFigures()
                for term, total in conn.execute(
                    sa.select(c.term, sa.func.sum(c.gain_cents))
                    .where(c.account_id == aid, c.realized.is_(True), c.closed_on >= qs, c.closed_on <= qe)
                    .group_by(c.term)
                ):
                    fig = fig + (YearFigures(int(total), 0, 0) if term == Term.SHORT else YearFigures(0, int(total), 0))
                div = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(f.cash_cents + f.commission_cents), 0)).where(
                        f.account_id == aid, f.action == FillAction.DIVIDEND, f.trade_date >= qs, f.trade_date <= qe
                    )
                ).scalar_one()
                fig = fig + YearFigures(0, 0, int(div))
                ytd = estimate(year_figures(conn, aid, year, qe), r).tax
                if fig == YearFigures():
                    continue
                rows.append(
                    {
                        "quarter": f"{year}Q{q + 1}",
                        "account": name,
                        "short_term_cents": Cents(fig.short_term),
                        "long_term_cents": Cents(fig.long_term),
                        "dividends_cents": Cents(fig.dividends),
                        "net_realized_cents": Cents(fig.short_term + fig.long_term),
                        "estimated_tax_ytd_cents": Cents(ytd),
                    }
                )
    return {
        "year": year,
        "rows": rows,
        "note": NOTE,
        "not_built": "reinvestment plans vs executed are reported by the lifecycle (quarterly reinvestment)",
    }


# --- the tax year --------------------------------------------------------------------------------


def _within(
    conn: sa.Connection, day: sa.ColumnElement[Any], around: sa.ColumnElement[Any], days: int
) -> sa.ColumnElement[bool]:
    """`day` within ±days of `around`, written so an index on `day` serves the range."""
    lo: sa.ColumnElement[Any]
    hi: sa.ColumnElement[Any]
    if conn.dialect.name == "sqlite":  # dates are ISO text there: compare with date() arithmetic
        lo, hi = sa.func.date(around, f"-{days} days"), sa.func.date(around, f"+{days} days")
    else:
        lo, hi = around - days, around + days
    return sa.between(day, lo, hi)


def _wash_flag(conn: sa.Connection, pid: int) -> tuple[sa.ColumnElement[bool], Any]:
    """A realized loss on shares with another lot of the same shares opened within 30 days either side
    (in any account of the portfolio: the household). Flagged, never applied."""
    c = lot_closes.c
    other = lots.alias("other")
    closed = lots.alias("closed")
    same = (
        sa.select(sa.literal(1))
        .select_from(other)
        .where(
            other.c.portfolio_id == closed.c.portfolio_id,
            other.c.instrument_id == closed.c.instrument_id,
            other.c.id != closed.c.id,  # instruments belong to one portfolio: so do their lots
            _within(conn, other.c.opened_on, c.closed_on, WASH_DAYS),
        )
    )
    return sa.and_(c.gain_cents < 0, instruments.c.kind == InstrumentKind.STOCK, sa.exists(same)), closed


def _scan(conn: sa.Connection, col: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """On SQLite, keep the planner off an index for a filter that selects most of a large table: a
    year of the tax ledger reads faster in one sequential pass than through an index (unary + is
    SQLite's documented way to say so)."""
    if conn.dialect.name != "sqlite":
        return col
    return sa.literal_column(f"+{col.table.name}.{col.name}", type_=col.type)


def _term(gains: int, losses: int, closes: int) -> TermSums:
    return {
        "gains_cents": Cents(gains),
        "losses_cents": Cents(losses),
        "net_cents": Cents(gains + losses),
        "closes": closes,
    }


def tax_years(engine: Engine, portfolio: str | int | None, first: int, last: int) -> TaxYears:
    """Several tax years in one answer: each year as `tax_year` gives it, and the sums over the range
    (each year is netted and estimated on its own; the sums add those results up)."""
    check_years(first, last)
    years = [tax_year(engine, portfolio, y) for y in range(first, last + 1)]

    def term(t: str) -> TermSums:
        return _term(*(sum(y[t][k] for y in years) for k in ("gains_cents", "losses_cents", "closes")))  # type: ignore[literal-required]

    def cents(k: str) -> Cents:
        return Cents(sum(y[k] for y in years))  # type: ignore[literal-required]

    total: TaxYearsTotal = {
        "short_term": term("short_term"),
        "long_term": term("long_term"),
        "dividends_cents": cents("dividends_cents"),
        "estimated_tax_cents": cents("estimated_tax_cents"),
        "paid_cents": cents("paid_cents"),
        "unpaid_cents": cents("unpaid_cents"),
    }
    return {"from_year": first, "to_year": last, "note": NOTE, "total": total, "years": years}


def tax_year(engine: Engine, portfolio: str | int | None, year: int) -> TaxYear:
    """The household's tax year: gains and losses by term, netting, estimated tax, payments, wash-sale
    flags; and each account's own estimate (as the lifecycle sees it). One pass over the ledger for
    the sums, one for the wash-sale flags."""
    check_years(year)
    a, tp = accounts.c, tax_payments.c
    start, end = date(year, 1, 1), date(year, 12, 31)
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        r = rates(conn, pid)
        sums, by_account = _realized_by_term(conn, pid, start, end)
        wash = _wash_sales(conn, pid, start, end)
        paid_by = dict(
            conn.execute(
                sa.select(tp.account_id, sa.func.sum(tp.amount_cents))
                .where(tp.portfolio_id == pid, tp.tax_year == year)
                .group_by(tp.account_id)
            ).all()
        )
        names = dict(conn.execute(sa.select(a.id, a.name).where(a.portfolio_id == pid)).all())
    return _tax_year(year, r, sums, by_account, wash, {aid: int(v) for aid, v in paid_by.items()}, names)


def _realized_by_term(
    conn: sa.Connection, pid: int, start: date, end: date
) -> tuple[dict[Term, list[int]], dict[int, YearFigures]]:
    """The household's realized (gains, losses, closes) by term, and each account's figures (net
    realized by term, dividends) between two days."""
    c, f, a = lot_closes.c, fills.c, accounts.c
    in_year = sa.and_(c.realized.is_(True), c.closed_on >= start, c.closed_on <= end)
    # By account (of this portfolio): the covering index on lot_closes answers without the table.
    mine = sa.select(a.id).where(a.portfolio_id == pid).scalar_subquery()
    sums = {Term.SHORT: [0, 0, 0], Term.LONG: [0, 0, 0]}
    by_account: dict[int, YearFigures] = {}
    for aid, term, gains, losses, n in conn.execute(
        sa.select(
            c.account_id,
            c.term,
            sa.func.sum(sa.case((c.gain_cents > 0, c.gain_cents), else_=0)),
            sa.func.sum(sa.case((c.gain_cents < 0, c.gain_cents), else_=0)),
            sa.func.count(),
        )
        .where(c.account_id.in_(mine), in_year)
        .group_by(c.account_id, c.term)
    ):
        net = int(gains) + int(losses)
        s = sums[term]
        s[0], s[1], s[2] = s[0] + int(gains), s[1] + int(losses), s[2] + int(n)
        part = YearFigures(net, 0, 0) if term == Term.SHORT else YearFigures(0, net, 0)
        by_account[aid] = by_account.get(aid, YearFigures()) + part
    # Dividends are few: fetched row by row (a GROUP BY here would tempt the planner off the
    # (portfolio, action, date) index into a scan of every fill).
    for aid, div in conn.execute(
        sa.select(f.account_id, f.cash_cents + f.commission_cents).where(
            f.portfolio_id == pid, f.action == FillAction.DIVIDEND, f.trade_date >= start, f.trade_date <= end
        )
    ):
        by_account[aid] = by_account.get(aid, YearFigures()) + YearFigures(0, 0, int(div))
    return sums, by_account


def _wash_sales(conn: sa.Connection, pid: int, start: date, end: date) -> tuple[int, int]:
    """How many realized closings between two days are flagged as possible wash sales, and their loss."""
    c, i = lot_closes.c, instruments.c
    # The wash-sale pass reads most of the year's rows: one sequential scan on SQLite.
    closed_on = _scan(conn, c.closed_on)
    scan = sa.and_(_scan(conn, c.portfolio_id) == pid, c.realized.is_(True), closed_on >= start, closed_on <= end)
    flag, closed = _wash_flag(conn, pid)
    n, loss = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(c.gain_cents), 0))
        .select_from(
            lot_closes.join(closed, sa.and_(closed.c.portfolio_id == c.portfolio_id, closed.c.id == c.lot_id)).join(
                instruments, sa.and_(i.portfolio_id == c.portfolio_id, i.id == closed.c.instrument_id)
            )
        )
        .where(scan, flag)
    ).one()
    return int(n), int(loss)


def _tax_year(
    year: int,
    r: TaxRates,
    sums: dict[Term, list[int]],
    by_account: dict[int, YearFigures],
    wash: tuple[int, int],
    paid_by: dict[int, int],
    names: dict[int, str],
) -> TaxYear:
    """The tax year from what `tax_year` read: the household netted and estimated as one, each
    account on its own."""
    household = sum(by_account.values(), YearFigures())
    lia = estimate(household, r)
    paid = sum(paid_by.values())
    per_account: list[AccountTax] = [
        {
            "account": names[aid],
            "short_term_cents": Cents(fig.short_term),
            "long_term_cents": Cents(fig.long_term),
            "dividends_cents": Cents(fig.dividends),
            "estimated_tax_cents": Cents(estimate(fig, r).tax),
            "paid_cents": Cents(paid_by.get(aid, 0)),
        }
        for aid, fig in sorted(by_account.items())
    ]
    return {
        "year": year,
        "note": NOTE,
        "rates_bps": {"short_term": r.short_term_bps, "long_term": r.long_term_bps, "dividend": r.dividend_bps},
        "short_term": _term(*sums[Term.SHORT]),
        "long_term": _term(*sums[Term.LONG]),
        "dividends_cents": Cents(household.dividends),
        "taxable_short_term_cents": Cents(lia.taxable_short_term),
        "taxable_long_term_cents": Cents(lia.taxable_long_term),
        "net_capital_loss_cents": Cents(lia.net_capital_loss),
        "estimated_tax_cents": Cents(lia.tax),
        "paid_cents": Cents(paid),
        "unpaid_cents": Cents(max(0, lia.tax - paid)),
        "wash_sale_flagged": {"closes": wash[0], "loss_cents": Cents(wash[1])},
        "accounts": per_account,
    }


REALIZED_COLUMNS = (
    "account",
    "symbol",
    "side",
    "quantity",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "gain",
    "term",
    "wash_sale_flag",
    "lot_id",
    "fill_id",
    "note",
)


def realized_rows(
    engine: Engine, portfolio: str | int | None, year: int, last_year: int | None = None
) -> Iterator[RealizedRow]:
    """One row per realized lot closing in `year` (through `last_year`, when given). For a short option
    the premium is the proceeds and the cost to close is the basis; for a long lot the sale is the
    proceeds and the purchase the basis."""
    last_year = year if last_year is None else last_year
    check_years(year, last_year)
    c, i, a = lot_closes.c, instruments.c, accounts.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        flag, closed = _wash_flag(conn, pid)
        q = (
            sa.select(
                a.name,
                i.symbol,
                closed.c.side,
                c.quantity,
                closed.c.opened_on,
                c.closed_on,
                c.open_cash_cents,
                c.close_cash_cents,
                c.gain_cents,
                c.term,
                sa.case((flag, 1), else_=0),
                c.lot_id,
                c.fill_id,
            )
            .select_from(
                lot_closes.join(closed, sa.and_(closed.c.portfolio_id == c.portfolio_id, closed.c.id == c.lot_id))
                .join(instruments, sa.and_(i.portfolio_id == c.portfolio_id, i.id == closed.c.instrument_id))
                .join(accounts, sa.and_(a.portfolio_id == c.portfolio_id, a.id == c.account_id))
            )
            .where(
                c.portfolio_id == pid,
                c.realized.is_(True),
                c.closed_on >= date(year, 1, 1),
                c.closed_on <= date(last_year, 12, 31),
            )
            .order_by(c.closed_on, c.id)
        )
        for name, sym, side, qty, opened, closed_on, ocash, ccash, gain, term, wash, lid, fid in conn.execute(
            q
        ).yield_per(10_000):
            proceeds, basis = (ccash, -ocash) if side == Side.LONG else (ocash, -ccash)
            yield {
                "account": name,
                "symbol": sym,
                "side": side,
                "quantity": qty,
                "date_acquired": opened.isoformat(),
                "date_sold": closed_on.isoformat(),
                "proceeds": f"{cents_to_decimal(proceeds):.2f}",
                "cost_basis": f"{cents_to_decimal(basis):.2f}",
                "gain": f"{cents_to_decimal(gain):.2f}",
                "term": term,
                "wash_sale_flag": "WASH_SALE?" if wash else "",
                "lot_id": lid,
                "fill_id": fid,
                "note": NOTE,
            }


def write_realized_csv(
    engine: Engine, portfolio: str | int | None, year: int, out: IO[str], last_year: int | None = None
) -> int:
    w = csv.DictWriter(out, fieldnames=REALIZED_COLUMNS)
    w.writeheader()
    n = 0
    for row in realized_rows(engine, portfolio, year, last_year):
        w.writerow(row)
        n += 1
    return n


# --- performance ---------------------------------------------------------------------------------


def performance_report(
    engine: Engine, portfolio: str | int | None, start: date, end: date, account: str | None = None
) -> Performance:
    """Per account: time-weighted return with flows (deposits, forks, merges ...) excluded, max drawdown."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        rows: list[AccountPerformance] = []
        for aid, name in _accounts(conn, pid, account):
            series = nav_series(conn, aid, start, end)
            perf = performance(series)
            rows.append(
                {
                    "account": name,
                    "start_nav_cents": Cents(perf.start_nav),
                    "end_nav_cents": Cents(perf.end_nav),
                    "flows_cents": Cents(perf.flows),
                    "twr": str(perf.twr.quantize(_BP)),
                    "max_drawdown": str(perf.max_drawdown.quantize(_BP)),
                    "series": [(d.on.isoformat(), d.nav, d.flow) for d in series],
                }
            )
    return {"start": start.isoformat(), "end": end.isoformat(), "accounts": rows}
