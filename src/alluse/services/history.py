"""An account's history, replayed from the record: cash from its postings (a fill's cash on its trade
date, a tax payment on its payment date, any other posting on the day it was recorded), positions
from its lots and their closings, valued at the newest mark or fill price on or before each day.

Flows are postings that are not results of trading (deposits, withdrawals, transfers, forks,
merges ...): time-weighted returns exclude them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from alluse.domain.booking import TRADES, FillAction
from alluse.domain.instruments import value_cents
from alluse.domain.ledger import TransferKind
from alluse.domain.lots import Side, share
from alluse.store.schema import (
    broker_rows,
    fills,
    instruments,
    lot_closes,
    lots,
    marks,
    postings,
    tax_payments,
    transfers,
)

RESULTS = frozenset(
    {
        TransferKind.TRADE,
        TransferKind.ASSIGNMENT,
        TransferKind.DIVIDEND,
        TransferKind.FEE,
        TransferKind.TAX_PAYMENT,
        TransferKind.INTEREST,
    }
)


@dataclass(frozen=True, slots=True)
class Day:
    on: date
    nav: int
    flow: int  # capital flows into the account that day (negative: out)


def nav_series(conn: sa.Connection, account_id: int, start: date, end: date) -> list[Day]:
    p, t, f, tp, br = postings.c, transfers.c, fills.c, tax_payments.c, broker_rows.c
    cash_events: list[tuple[date, int, bool]] = []
    q = (
        sa.select(p.amount_cents, t.kind, t.created_at, f.trade_date, tp.paid_on, br.booked_on)
        .join(transfers, sa.and_(t.portfolio_id == p.portfolio_id, t.id == p.transfer_id))
        .outerjoin(fills, sa.and_(f.portfolio_id == t.portfolio_id, f.transfer_id == t.id))
        .outerjoin(tax_payments, sa.and_(tp.portfolio_id == t.portfolio_id, tp.transfer_id == t.id))
        .outerjoin(
            broker_rows,
            sa.and_(br.portfolio_id == t.portfolio_id, br.transfer_id == t.id, br.account_id == p.account_id),
        )
        .where(p.account_id == account_id)
    )
    for amount, kind, created, trade_date, paid_on, booked_on in conn.execute(q):
        # A statement's cash row (deposit, interest …) happened on its own date, not when imported.
        on = trade_date or paid_on or booked_on or created.date()
        cash_events.append((on, amount, kind not in RESULTS))
    lo, c, i = lots.c, lot_closes.c, instruments.c
    lot_rows = conn.execute(
        sa.select(lo.id, lo.instrument_id, lo.side, lo.opened_on, lo.quantity, lo.open_cash_cents, i.multiplier)
        .join(instruments, sa.and_(i.portfolio_id == lo.portfolio_id, i.id == lo.instrument_id))
        .where(lo.account_id == account_id)
    ).all()
    closes: dict[int, list[tuple[date, int]]] = {}
    for lid, on, qty in conn.execute(sa.select(c.lot_id, c.closed_on, c.quantity).where(c.account_id == account_id)):
        closes.setdefault(lid, []).append((on, qty))
    iids = sorted({r.instrument_id for r in lot_rows})
    prices: dict[int, list[tuple[date, int, int, int]]] = {iid: [] for iid in iids}
    if iids:
        for iid, on, px, mid in conn.execute(
            sa.select(marks.c.instrument_id, marks.c.as_of, marks.c.price_e4, marks.c.id).where(
                marks.c.instrument_id.in_(iids)
            )
        ):
            prices[iid].append((on, 1, mid, px))
        for iid, on, px, fid in conn.execute(
            sa.select(f.instrument_id, f.trade_date, f.price_e4, f.id).where(
                f.account_id == account_id,
                f.instrument_id.in_(iids),
                f.action.in_([a for a in FillAction if a in TRADES]),
            )
        ):
            prices[iid].append((on, 0, fid, px))
    for lst in prices.values():
        lst.sort()
    keys = {iid: [(d, k, n) for d, k, n, _ in lst] for iid, lst in prices.items()}

    def price(iid: int, on: date) -> int | None:
        idx = bisect.bisect_right(keys[iid], (on, 2, 0)) - 1
        return prices[iid][idx][3] if idx >= 0 else None

    cash_events.sort(key=lambda e: e[0])
    out: list[Day] = []
    cash = sum(a for on, a, _ in cash_events if on < start)
    ev = bisect.bisect_left([e[0] for e in cash_events], start)
    day = start
    while day <= end:
        flow = 0
        while ev < len(cash_events) and cash_events[ev][0] == day:
            cash += cash_events[ev][1]
            if cash_events[ev][2]:
                flow += cash_events[ev][1]
            ev += 1
        pv = 0
        for r in lot_rows:
            if r.opened_on > day:
                continue
            held = r.quantity - sum(q for on, q in closes.get(r.id, ()) if on <= day)
            if held:
                px = price(r.instrument_id, day)
                if px is None:
                    # Never priced yet (shares received by assignment, before any mark): carried at basis.
                    pv += share(-r.open_cash_cents, held, r.quantity)
                else:
                    pv += value_cents(held if r.side == Side.LONG else -held, px, r.multiplier)
        out.append(Day(day, cash + pv, flow))
        day += timedelta(days=1)
    return out


@dataclass(frozen=True, slots=True)
class Performance:
    twr: Decimal  # time-weighted return over the period, flows excluded
    max_drawdown: Decimal  # largest fall of the return index from a peak, as a fraction
    start_nav: int
    end_nav: int
    flows: int


def performance(series: list[Day]) -> Performance:
    """Daily sub-period returns r = (NAV_d − flow_d) / NAV_{d−1}, chained. A day with no prior NAV
    (before funding) has no return; flows are taken at the end of their day."""
    index = Decimal(1)
    peak = Decimal(1)
    mdd = Decimal(0)
    prev: int | None = None
    for d in series:
        if prev is not None and prev > 0:
            index *= Decimal(d.nav - d.flow) / Decimal(prev)
            peak = max(peak, index)
            mdd = max(mdd, (peak - index) / peak)
        prev = d.nav
    return Performance(
        index - 1,
        mdd,
        series[0].nav - series[0].flow if series else 0,
        series[-1].nav if series else 0,
        sum(d.flow for d in series),
    )
