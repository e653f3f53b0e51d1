"""Reports (ALLUSE_RULES §8): holdings with unrealized P&L, weekly, monthly, quarterly, the tax year,
an audit-ready CSV of realized gains per lot, and time-weighted performance. Read-only; figures are
integer cents. Every tax figure is an estimate, not tax advice (`NOTE`)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput
from alluse.domain.instruments import LEAPS_MIN_DAYS, price_text
from alluse.domain.lots import Term, holding_term
from alluse.domain.money import cents_to_decimal
from alluse.domain.tax import NOTE, YearFigures, estimate
from alluse.services.history import nav_series, performance
from alluse.services.trades import week_start
from alluse.store.asof import account_as_of, latest_day
from alluse.store.repo import resolve_account
from alluse.store.schema import accounts, fills, instruments, lot_closes, lots, tax_payments, weeks
from alluse.store.scope import resolve_portfolio
from alluse.views.tax import rates, year_figures

WASH_DAYS = 30
_BP = Decimal("0.000001")  # returns are shown to a hundredth of a basis point
TRADE_ACTIONS = ("BTO", "STO", "BTC", "STC", "EXPIRE", "ASSIGN")
# Calendar years a report accepts (a two-digit year is a typo, not the year 27), and the longest range.
FIRST_YEAR, LAST_YEAR, MAX_YEARS = 1901, 2999, 200


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
        return [(aid, conn.execute(sa.select(a.name).where(a.portfolio_id == pid, a.id == aid)).scalar_one())]
    return [
        (r.id, r.name)
        for r in conn.execute(sa.select(a.id, a.name).where(a.portfolio_id == pid, a.kind != "EXT").order_by(a.id))
    ]


# --- holdings ------------------------------------------------------------------------------------


def holdings(
    engine: Engine, portfolio: str | int | None, account: str | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """Open lots with their value and unrealized P&L, and per-account NAV, as of a day: only facts
    dated on or before it count, positions at their latest prices then. Default: today, or the latest
    date a recorded fact carries if that is later (so every recorded fact shows)."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        as_of = as_of or latest_day(conn, pid, date.today())
        accs = _accounts(conn, pid, account)
        out = []
        for aid, name in accs:
            st = account_as_of(conn, pid, aid, as_of)
            rows = []
            for lot in st.lots:
                term = Term.SHORT if lot.side == "SHORT" else holding_term(lot.opened_on, as_of)
                rows.append(
                    {
                        "lot_id": lot.lot_id,
                        "symbol": lot.symbol,
                        "side": lot.side,
                        "opened_on": lot.opened_on.isoformat(),
                        "quantity": lot.remaining,
                        "basis_cents": -lot.remaining_cash,
                        "price": price_text(lot.price_e4),
                        "value_cents": lot.value,
                        "unrealized_cents": lot.value + lot.remaining_cash,
                        "term": term,
                    }
                )
            out.append(
                {
                    "account": name,
                    "cash_cents": st.cash,
                    "positions_value_cents": st.positions_value,
                    "nav_cents": st.nav,
                    "collateral_cents": st.collateral,
                    # Per-lot figures are rounded per lot; the account figure is exact against its NAV.
                    "unrealized_cents": st.positions_value + sum(lot.remaining_cash for lot in st.lots),
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
            f.portfolio_id == pid, f.action == "DIVIDEND", f.trade_date >= start, f.trade_date <= end
        )
    ):
        out[bucket(on)] = out.get(bucket(on), 0) + cash
    return out


def weekly(engine: Engine, portfolio: str | int | None, start: date, end: date) -> dict[str, Any]:
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
    rows = []
    day = start
    while day <= end:
        pred, conf = types.get(day, (None, None))
        rows.append(
            {
                "week_start": day.isoformat(),
                "trades": trades.get(day, 0),
                "income_cents": income.get(day, 0),
                "predicted": pred,
                "confirmed": conf,
                "correct": None if pred is None or conf is None else pred == conf,
            }
        )
        day += timedelta(days=7)
    judged = [r for r in rows if r["correct"] is not None]
    hits = sum(1 for r in judged if r["correct"])
    return {"weeks": rows, "predicted_and_confirmed": len(judged), "correct": hits}


def week_accuracy(engine: Engine, portfolio: str | int | None) -> dict[str, Any]:
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
            f.portfolio_id == pid, f.action == "DIVIDEND", f.trade_date >= start, f.trade_date <= end
        )
    ).scalar_one()
    return YearFigures(st, lt, int(div))


def _month_end(year: int, month: int) -> date:
    return (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)


def monthly(engine: Engine, portfolio: str | int | None, year: int) -> dict[str, Any]:
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
            .where(f.portfolio_id == pid, f.action == "BTO", f.trade_date >= start, f.trade_date <= end)
        ):
            if kind == "STOCK" or (pc == "C" and (expiry - on).days >= LEAPS_MIN_DAYS):
                reinvest[on.month] = reinvest.get(on.month, 0) - cash
        tax_ytd, months = 0, list[dict[str, Any]]()
        for m in range(1, 13):
            ytd = estimate(_year_figures_household(conn, pid, start, _month_end(year, m)), r).tax
            months.append(
                {
                    "month": f"{year}-{m:02d}",
                    "income_cents": income.get(m, 0),
                    "reinvested_cents": reinvest.get(m, 0),
                    "estimated_tax_cents": ytd - tax_ytd,
                }
            )
            tax_ytd = ytd
        growth: dict[str, list[int]] = {}
        for aid, name in _accounts(conn, pid, None):
            series = nav_series(conn, pid, aid, start - timedelta(days=1), end)
            by_month = [0] * 12
            for prev, d in zip(series, series[1:], strict=False):
                by_month[d.on.month - 1] += d.nav - prev.nav - d.flow
            growth[name] = by_month
    for idx, month in enumerate(months):
        month["growth_cents"] = {name: g[idx] for name, g in growth.items()}
    return {"year": year, "months": months, "tax_estimated_ytd_cents": tax_ytd, "note": NOTE}


def quarterly(engine: Engine, portfolio: str | int | None, year: int) -> dict[str, Any]:
    """The tax ledger by quarter and account: realized short/long-term, dividends, and each account's
    estimated tax for the year to the quarter's end."""
    check_years(year)
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        r = rates(conn, pid)
        c, f = lot_closes.c, fills.c
        rows = []
        for aid, name in _accounts(conn, pid, None):
            for q in range(4):
                qs, qe = date(year, 3 * q + 1, 1), _month_end(year, 3 * q + 3)
                fig = YearFigures()
                for term, total in conn.execute(
                    sa.select(c.term, sa.func.sum(c.gain_cents))
                    .where(
                        c.portfolio_id == pid,
                        c.account_id == aid,
                        c.realized.is_(True),
                        c.closed_on >= qs,
                        c.closed_on <= qe,
                    )
                    .group_by(c.term)
                ):
                    fig = fig + (YearFigures(int(total), 0, 0) if term == Term.SHORT else YearFigures(0, int(total), 0))
                div = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(f.cash_cents + f.commission_cents), 0)).where(
                        f.portfolio_id == pid,
                        f.account_id == aid,
                        f.action == "DIVIDEND",
                        f.trade_date >= qs,
                        f.trade_date <= qe,
                    )
                ).scalar_one()
                fig = fig + YearFigures(0, 0, int(div))
                ytd = estimate(year_figures(conn, pid, aid, year, qe), r).tax
                if fig == YearFigures():
                    continue
                rows.append(
                    {
                        "quarter": f"{year}Q{q + 1}",
                        "account": name,
                        "short_term_cents": fig.short_term,
                        "long_term_cents": fig.long_term,
                        "dividends_cents": fig.dividends,
                        "net_realized_cents": fig.short_term + fig.long_term,
                        "estimated_tax_ytd_cents": ytd,
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
    return sa.and_(c.gain_cents < 0, instruments.c.kind == "STOCK", sa.exists(same)), closed


def _scan(conn: sa.Connection, col: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """On SQLite, keep the planner off an index for a filter that selects most of a large table: a
    year of the tax ledger reads faster in one sequential pass than through an index (unary + is
    SQLite's documented way to say so)."""
    if conn.dialect.name != "sqlite":
        return col
    return sa.literal_column(f"+{col.table.name}.{col.name}", type_=col.type)


def _term(gains: int, losses: int, closes: int) -> dict[str, int]:
    return {"gains_cents": gains, "losses_cents": losses, "net_cents": gains + losses, "closes": closes}


def tax_years(engine: Engine, portfolio: str | int | None, first: int, last: int) -> dict[str, Any]:
    """Several tax years in one answer: each year as `tax_year` gives it, and the sums over the range
    (each year is netted and estimated on its own; the sums add those results up)."""
    check_years(first, last)
    years = [tax_year(engine, portfolio, y) for y in range(first, last + 1)]
    total: dict[str, Any] = {}
    for term in ("short_term", "long_term"):
        total[term] = _term(*(sum(y[term][k] for y in years) for k in ("gains_cents", "losses_cents", "closes")))
    for k in ("dividends_cents", "estimated_tax_cents", "paid_cents", "unpaid_cents"):
        total[k] = sum(y[k] for y in years)
    return {"from_year": first, "to_year": last, "note": NOTE, "total": total, "years": years}


def tax_year(engine: Engine, portfolio: str | int | None, year: int) -> dict[str, Any]:
    """The household's tax year: gains and losses by term, netting, estimated tax, payments, wash-sale
    flags; and each account's own estimate (as the lifecycle sees it). One pass over the ledger for
    the sums, one for the wash-sale flags."""
    check_years(year)
    c, i, f, a = lot_closes.c, instruments.c, fills.c, accounts.c
    start, end = date(year, 1, 1), date(year, 12, 31)
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        r = rates(conn, pid)
        in_year = sa.and_(c.realized.is_(True), c.closed_on >= start, c.closed_on <= end)
        # By account (of this portfolio): the covering index on lot_closes answers without the table.
        mine = sa.select(a.id).where(a.portfolio_id == pid).scalar_subquery()
        sums = {"SHORT": [0, 0, 0], "LONG": [0, 0, 0]}
        by_account: dict[int, YearFigures] = {}
        for aid, term, gains, losses, n in conn.execute(
            sa.select(
                c.account_id,
                c.term,
                sa.func.sum(sa.case((c.gain_cents > 0, c.gain_cents), else_=0)),
                sa.func.sum(sa.case((c.gain_cents < 0, c.gain_cents), else_=0)),
                sa.func.count(),
            )
            .where(c.portfolio_id == pid, c.account_id.in_(mine), in_year)
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
                f.portfolio_id == pid, f.action == "DIVIDEND", f.trade_date >= start, f.trade_date <= end
            )
        ):
            by_account[aid] = by_account.get(aid, YearFigures()) + YearFigures(0, 0, int(div))
        # The wash-sale pass reads most of the year's rows: one sequential scan on SQLite.
        closed_on = _scan(conn, c.closed_on)
        scan = sa.and_(_scan(conn, c.portfolio_id) == pid, c.realized.is_(True), closed_on >= start, closed_on <= end)
        flag, closed = _wash_flag(conn, pid)
        wash_n, wash_loss = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(c.gain_cents), 0))
            .select_from(
                lot_closes.join(closed, sa.and_(closed.c.portfolio_id == c.portfolio_id, closed.c.id == c.lot_id)).join(
                    instruments, sa.and_(i.portfolio_id == c.portfolio_id, i.id == closed.c.instrument_id)
                )
            )
            .where(scan, flag)
        ).one()
        paid_by = dict(
            conn.execute(
                sa.select(tax_payments.c.account_id, sa.func.sum(tax_payments.c.amount_cents))
                .where(tax_payments.c.portfolio_id == pid, tax_payments.c.tax_year == year)
                .group_by(tax_payments.c.account_id)
            ).all()
        )
        names = dict(conn.execute(sa.select(a.id, a.name).where(a.portfolio_id == pid)).all())
    household = sum(by_account.values(), YearFigures())
    lia = estimate(household, r)
    paid = sum(int(v) for v in paid_by.values())
    per_account = [
        {
            "account": names[aid],
            "short_term_cents": fig.short_term,
            "long_term_cents": fig.long_term,
            "dividends_cents": fig.dividends,
            "estimated_tax_cents": estimate(fig, r).tax,
            "paid_cents": int(paid_by.get(aid, 0)),
        }
        for aid, fig in sorted(by_account.items())
    ]
    return {
        "year": year,
        "note": NOTE,
        "rates_bps": {"short_term": r.short_term_bps, "long_term": r.long_term_bps, "dividend": r.dividend_bps},
        "short_term": _term(*sums["SHORT"]),
        "long_term": _term(*sums["LONG"]),
        "dividends_cents": household.dividends,
        "taxable_short_term_cents": lia.taxable_short_term,
        "taxable_long_term_cents": lia.taxable_long_term,
        "net_capital_loss_cents": lia.net_capital_loss,
        "estimated_tax_cents": lia.tax,
        "paid_cents": paid,
        "unpaid_cents": max(0, lia.tax - paid),
        "wash_sale_flagged": {"closes": int(wash_n), "loss_cents": int(wash_loss)},
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
) -> Iterator[dict[str, Any]]:
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
            proceeds, basis = (ccash, -ocash) if side == "LONG" else (ocash, -ccash)
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
) -> dict[str, Any]:
    """Per account: time-weighted return with flows (deposits, forks, merges ...) excluded, max drawdown."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        rows = []
        for aid, name in _accounts(conn, pid, account):
            series = nav_series(conn, pid, aid, start, end)
            perf = performance(series)
            rows.append(
                {
                    "account": name,
                    "start_nav_cents": perf.start_nav,
                    "end_nav_cents": perf.end_nav,
                    "flows_cents": perf.flows,
                    "twr": str(perf.twr.quantize(_BP)),
                    "max_drawdown": str(perf.max_drawdown.quantize(_BP)),
                    "series": [(d.on.isoformat(), d.nav, d.flow) for d in series],
                }
            )
    return {"start": start.isoformat(), "end": end.isoformat(), "accounts": rows}
