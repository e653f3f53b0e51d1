"""An account as of a date, from the dated facts alone: what every figure that takes a date reads.

A fact's date is the date it carries: a fill's (dividend's, fee's, assignment's) trade date, a broker
statement's cash row's date (deposit, withdrawal, interest, withholding tax), a tax payment's paid-on date, a lifecycle action's as-of date, a mark's as-of date, a lot closing's date.
`account_as_of(conn, aid, D)` uses only dated facts dated on or before D, so adding facts dated after
D changes nothing it returns. A cash move a person makes (group opening, deposit, withdrawal,
transfer, reversal) carries no date of its own in this version: it counts in every as-of figure
(docs/accounts-and-ledger.md, "As of a date").

The cached columns on `accounts` and `positions` are the same figures for the latest state; the
valuation rules here are theirs (a position is valued at its latest-dated fill or mark, the later
recorded one on the same day; shares received by a put's assignment at the strike), so with no fact
dated after D the two agree (tests/property/test_as_of.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from alluse.domain.accounts import AccountKind, CashSnapshot
from alluse.domain.instruments import value_cents
from alluse.domain.ledger import CAPITAL_FLOWS, CAPITAL_INFLOWS
from alluse.domain.lots import Side
from alluse.store.idlist import in_ids
from alluse.store.prepared import Prepared
from alluse.store.schema import (
    accounts,
    broker_rows,
    earmarks,
    fills,
    instruments,
    lifecycle_actions,
    lot_closes,
    lots,
    marks,
    postings,
    tax_payments,
    transfers,
)

_p, _t, _f, _tp, _la = postings.c, transfers.c, fills.c, tax_payments.c, lifecycle_actions.c
_br = broker_rows.c
_PRICED = ("BTO", "STO", "BTC", "STC", "EXPIRE")


@dataclass(frozen=True, slots=True)
class LotAsOf:
    lot_id: int
    instrument_id: int
    symbol: str
    side: str
    opened_on: date
    remaining: int
    remaining_cash: int  # the part of the lot's opening cash still open (negative: a long lot's basis)
    price_e4: int
    multiplier: int
    put_call: str | None
    strike_e4: int | None

    @property
    def value(self) -> int:
        return value_cents(
            self.remaining if self.side == Side.LONG else -self.remaining, self.price_e4, self.multiplier
        )


@dataclass(frozen=True, slots=True)
class AccountAsOf:
    account_id: int
    on: date
    cash: int
    base_capital: int
    earmarked: int
    lots: list[LotAsOf] = field(default_factory=list)

    @property
    def positions_value(self) -> int:
        """Valued per position (all lots of an instrument together), rounded once, as the cache is."""
        held: dict[int, tuple[int, int, int]] = {}
        for lot in self.lots:
            signed = lot.remaining if lot.side == Side.LONG else -lot.remaining
            qty = held.get(lot.instrument_id, (0, 0, 0))[0]
            held[lot.instrument_id] = (qty + signed, lot.price_e4, lot.multiplier)
        return sum(value_cents(qty, px, mult) for qty, px, mult in held.values())

    @property
    def collateral(self) -> int:
        """Strike × multiplier × contracts of the short puts open on the day."""
        return sum(
            value_cents(lot.remaining, lot.strike_e4 or 0, lot.multiplier)
            for lot in self.lots
            if lot.side == Side.SHORT and lot.put_call == "P"
        )

    @property
    def nav(self) -> int:
        return self.cash + self.positions_value

    def snapshot(self, label: str, kind: AccountKind, buffer_bps: int) -> CashSnapshot:
        return CashSnapshot(label, kind, self.cash, self.positions_value, self.collateral, self.earmarked, buffer_bps)


def _dated_on_or_before(day: date) -> sa.ColumnElement[bool]:
    """For a posting joined to its transfer, fill, tax payment and lifecycle action: dated ≤ day."""
    return sa.case(
        (_f.id.is_not(None), _f.trade_date <= day),
        (_br.id.is_not(None), _br.booked_on <= day),
        (_tp.id.is_not(None), _tp.paid_on <= day),
        (_la.id.is_not(None), _la.as_of <= day),
        else_=sa.true(),  # an undated cash move
    )


def _journal() -> sa.FromClause:
    return (
        postings.join(transfers, sa.and_(_t.portfolio_id == _p.portfolio_id, _t.id == _p.transfer_id))
        .outerjoin(
            fills, sa.and_(_f.portfolio_id == _t.portfolio_id, _f.transfer_id == _t.id, _f.account_id == _p.account_id)
        )
        .outerjoin(
            broker_rows,
            sa.and_(_br.portfolio_id == _t.portfolio_id, _br.transfer_id == _t.id, _br.account_id == _p.account_id),
        )
        .outerjoin(tax_payments, sa.and_(_tp.portfolio_id == _t.portfolio_id, _tp.transfer_id == _t.id))
        .outerjoin(
            lifecycle_actions,
            sa.and_(_t.kind.in_(["FORK", "MERGE"]), _la.portfolio_id == _t.portfolio_id, _la.audit_seq == _t.audit_seq),
        )
    )


def capital_part(kind: sa.ColumnElement[str], amount: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """How much of a posting (its transfer's kind, its amount) changes its account's base capital:
    all of a capital flow, the positive legs of a capital inflow (a fork's or merge's new money)."""
    return sa.case(
        (kind.in_([k.value for k in CAPITAL_FLOWS]), amount),
        (sa.and_(kind.in_([k.value for k in CAPITAL_INFLOWS]), amount > 0), amount),
        else_=0,
    )


# Accounts per statement: each figure is read for many accounts at once (a sweep's candidates).
def _cash_and_base(conn: sa.Connection, pid: int, ids: list[int], day: date) -> dict[int, tuple[int, int]]:
    capital = capital_part(_t.kind, _p.amount_cents)
    q = (
        sa.select(
            _p.account_id,
            sa.func.coalesce(sa.func.sum(_p.amount_cents), 0),
            sa.func.coalesce(sa.func.sum(capital), 0),
        )
        .select_from(_journal())
        .where(_p.portfolio_id == pid, in_ids(_p.account_id), _dated_on_or_before(day))
        .group_by(_p.account_id)
    )
    return {int(aid): (int(cash), int(base)) for aid, cash, base in conn.execute(q, {"ids": ids})}


def _earmarked(conn: sa.Connection, pid: int, ids: list[int], day: date) -> dict[int, int]:
    """A plan's earmarks are dated by its action's as-of date, a purchase's draw-down by its fill's
    trade date; any other draw-down (a merge, by hand) counts on every day, like an undated cash move."""
    e = earmarks.c
    draw_fill = fills.alias("draw_fill")
    q = (
        sa.select(e.account_id, sa.func.coalesce(sa.func.sum(e.amount_cents), 0))
        .select_from(
            earmarks.outerjoin(
                lifecycle_actions, sa.and_(_la.portfolio_id == e.portfolio_id, _la.id == e.action_id)
            ).outerjoin(
                draw_fill,
                sa.and_(
                    draw_fill.c.portfolio_id == e.portfolio_id,
                    e.action_id.is_(None),
                    draw_fill.c.account_id == e.account_id,
                    draw_fill.c.audit_seq == e.audit_seq,
                ),
            )
        )
        .where(
            e.portfolio_id == pid,
            in_ids(e.account_id),
            sa.case(
                (_la.id.is_not(None), _la.as_of <= day),
                (draw_fill.c.id.is_not(None), draw_fill.c.trade_date <= day),
                else_=sa.true(),
            ),
        )
        .group_by(e.account_id)
    )
    return {int(aid): int(total) for aid, total in conn.execute(q, {"ids": ids})}


def _prices(conn: sa.Connection, pid: int, held: dict[int, set[int]], day: date) -> dict[int, dict[int, int]]:
    """Per account, each held instrument's valuation price on `day`: its latest-dated fill in this
    account or mark (the later recorded on the same day); shares received by a put's assignment enter
    at the strike."""
    i = instruments.c
    instrument_ids = sorted({iid for ids in held.values() for iid in ids})
    marked: list[tuple[date, int, int, int]] = []  # (date, audit seq, instrument, price), any account
    for iid, on, seq, px in conn.execute(
        sa.select(marks.c.instrument_id, marks.c.as_of, marks.c.audit_seq, marks.c.price_e4).where(
            marks.c.portfolio_id == pid, in_ids(marks.c.instrument_id), marks.c.as_of <= day
        ),
        {"ids": instrument_ids},
    ):
        marked.append((on, seq, iid, px))
    filled: dict[int, list[tuple[date, int, int, int]]] = {aid: [] for aid in held}
    for aid, iid, on, seq, px, action, pc, strike, underlying in conn.execute(
        sa.select(
            _f.account_id,
            _f.instrument_id,
            _f.trade_date,
            _f.audit_seq,
            _f.price_e4,
            _f.action,
            i.put_call,
            i.strike_e4,
            i.underlying,
        )  # fmt: skip
        .join(instruments, sa.and_(i.portfolio_id == _f.portfolio_id, i.id == _f.instrument_id))
        .where(
            _f.portfolio_id == pid,
            in_ids(_f.account_id),
            _f.trade_date <= day,
            _f.action.in_([*_PRICED, "ASSIGN"]),
        ),
        {"ids": sorted(held)},
    ):
        if action != "ASSIGN":
            filled[aid].append((on, seq, iid, px))
        elif pc == "P":
            stock = conn.execute(
                sa.select(i.id).where(i.portfolio_id == pid, i.symbol == underlying, i.kind == "STOCK")
            ).scalar_one_or_none()
            if stock is not None:
                filled[aid].append((on, seq, stock, strike))
    out: dict[int, dict[int, int]] = {}
    for aid, ids in held.items():
        prices: dict[int, int] = {}
        events = [ev for ev in marked if ev[2] in ids] + filled[aid]
        for _on, _seq, iid, px in sorted(events, key=lambda ev: (ev[0], ev[1])):
            prices[iid] = px
        out[aid] = prices
    return out


def _lots(conn: sa.Connection, pid: int, ids: list[int], day: date) -> dict[int, list[LotAsOf]]:
    lo, c, i = lots.c, lot_closes.c, instruments.c
    rows: dict[int, list[Any]] = {aid: [] for aid in ids}
    closed = (
        sa.select(
            c.portfolio_id,
            c.lot_id,
            sa.func.sum(c.quantity).label("qty"),
            sa.func.sum(c.open_cash_cents).label("cash"),
        )
        .where(c.portfolio_id == pid, in_ids(c.account_id), c.closed_on <= day)
        .group_by(c.portfolio_id, c.lot_id)
        .subquery()
    )
    q = (
        sa.select(
            lo.account_id,
            lo.id,
            lo.instrument_id,
            i.symbol,
            lo.side,
            lo.opened_on,
            lo.quantity - sa.func.coalesce(closed.c.qty, 0),
            lo.open_cash_cents - sa.func.coalesce(closed.c.cash, 0),
            i.multiplier,
            i.put_call,
            i.strike_e4,
        )
        .join(instruments, sa.and_(i.portfolio_id == lo.portfolio_id, i.id == lo.instrument_id))
        .outerjoin(closed, sa.and_(closed.c.portfolio_id == lo.portfolio_id, closed.c.lot_id == lo.id))
        .where(lo.portfolio_id == pid, in_ids(lo.account_id), lo.opened_on <= day)
        .order_by(lo.account_id, i.symbol, lo.opened_on, lo.id)
    )
    for r in conn.execute(q, {"ids": ids}):
        if r[6] > 0:
            rows[r[0]].append(r[1:])
    held = {aid: {r[1] for r in found} for aid, found in rows.items() if found}
    prices = _prices(conn, pid, held, day) if held else {}
    return {
        aid: [
            LotAsOf(lid, iid, sym, side, opened, int(rem), int(rcash), prices[aid].get(iid, 0), mult, pc, strike)
            for lid, iid, sym, side, opened, rem, rcash, mult, pc, strike in found
        ]
        for aid, found in rows.items()
    }


def account_as_of(conn: sa.Connection, portfolio_id: int, account_id: int, day: date) -> AccountAsOf:
    return accounts_as_of(conn, portfolio_id, [account_id], day)[account_id]


def accounts_as_of(conn: sa.Connection, portfolio_id: int, ids: list[int], day: date) -> dict[int, AccountAsOf]:
    """`account_as_of` of many accounts of one portfolio, a few statements for all of them."""
    ids, pid = sorted(set(ids)), portfolio_id
    cash_base, earmarked = _cash_and_base(conn, pid, ids, day), _earmarked(conn, pid, ids, day)
    held = _lots(conn, pid, ids, day)
    return {aid: AccountAsOf(aid, day, *cash_base.get(aid, (0, 0)), earmarked.get(aid, 0), held[aid]) for aid in ids}


def _facts_after() -> Prepared:
    a, c, lo = accounts.c, lot_closes.c, lots.c
    pid, day = sa.bindparam("pid", type_=sa.BigInteger), sa.bindparam("day", type_=sa.Date)
    dated = sa.union(
        sa.select(_f.account_id).where(_f.portfolio_id == pid, _f.trade_date > day),
        sa.select(c.account_id).where(c.portfolio_id == pid, c.closed_on > day),
        sa.select(_tp.account_id).where(_tp.portfolio_id == pid, _tp.paid_on > day),
        sa.select(_br.account_id).where(_br.portfolio_id == pid, _br.booked_on > day),
        sa.select(_la.account_id).where(_la.portfolio_id == pid, _la.as_of > day),
        sa.select(lo.account_id)
        .join(marks, sa.and_(marks.c.portfolio_id == lo.portfolio_id, marks.c.instrument_id == lo.instrument_id))
        .where(lo.portfolio_id == pid, marks.c.as_of > day),
    ).subquery()
    ext = sa.select(a.id).where(a.portfolio_id == pid, a.kind == "EXT")
    return Prepared(sa.select(dated.c.account_id).where(dated.c.account_id.not_in(ext)))


# One prepared statement: the lifecycle asks this on every run, most often to hear "none".
_FACTS_AFTER = _facts_after()


def accounts_with_facts_after(conn: sa.Connection, portfolio_id: int, day: date) -> set[int]:
    """Accounts whose figures as of `day` may differ from their cached (latest) ones: each has a fact
    dated after `day`, or holds an instrument marked after it."""
    return {int(aid) for (aid,) in _FACTS_AFTER.rows(conn, pid=portfolio_id, day=day)}


def latest_day(conn: sa.Connection, portfolio_id: int, today: date) -> date:
    """Today, or the latest date a fact carries when one is dated later (a trade entered ahead): the
    day on which every recorded fact counts."""
    c = lot_closes.c
    days = [today]
    for col, table in ((_f.trade_date, fills), (marks.c.as_of, marks), (c.closed_on, lot_closes),
                       (_tp.paid_on, tax_payments), (_la.as_of, lifecycle_actions),
                       (_br.booked_on, broker_rows)):  # fmt: skip
        day = conn.execute(sa.select(sa.func.max(col)).where(table.c.portfolio_id == portfolio_id)).scalar_one()
        if day is not None:
            days.append(day)
    return max(days)
