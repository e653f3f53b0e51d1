"""Earmarks (ALLUSE_RULES §4, §5.4): cash set aside inside an account for a purpose.

Quarterly reinvestment writes them (a tax reserve and the 75/25 split); later purchases, new
contracts' collateral and merges draw them down. The `earmarks` table is append-only and the source;
`accounts.earmarked_cents` caches each account's total, and `alluse verify` recomputes it.
"""

from __future__ import annotations

from datetime import date
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind
from alluse.domain.instruments import LEAPS_MIN_DAYS, parse_symbol
from alluse.domain.lifecycle import EarmarkPurpose
from alluse.domain.money import Cents
from alluse.store import earmarks as store
from alluse.store.earmarks import EarmarkRow
from alluse.store.repo import account_label
from alluse.store.schema import accounts, earmarks
from alluse.store.scope import resolve_portfolio
from alluse.store.uow import Tx

_a, _e = accounts.c, earmarks.c


class FillFacts(TypedDict):
    """What a recorded fill tells the earmarks: which purchase it is and what it cost."""

    fill_id: int
    action: str
    symbol: str | None
    quantity: int
    cash_cents: int
    multiplier: int


class EarmarkLine(TypedDict):
    """Planned versus executed for one account and purpose."""

    account: str
    purpose: str
    planned_cents: Cents
    executed_cents: Cents
    open_cents: Cents


def earmark_row(
    tx: Tx, i: int, account_id: int, purpose: EarmarkPurpose, amount: int, action_id: int | None, reference: str
) -> EarmarkRow:
    return {
        "portfolio_id": tx.portfolio_id,
        "account_id": account_id,
        "purpose": purpose.value,
        "amount_cents": amount,
        "action_id": action_id,
        "reference": reference[:200],
        "audit_seq": tx.seq(i),
        "created_at": tx.now,
    }


# What a unit of work knows is still earmarked, by account and purpose (read once, then kept up to
# date by its own draws; only for work that writes no other earmarks).
OpenEarmarks = dict[tuple[int, str], int]


def draw_down(
    tx: Tx,
    account_id: int,
    purpose: EarmarkPurpose,
    amount: int,
    reference: str,
    request_index: int = 0,
    known: OpenEarmarks | None = None,
) -> int:
    """Inside a purchase's (or tax payment's) unit of work: draw the account's open earmark for
    `purpose` down by up to `amount`; returns what was drawn. Buying more than was earmarked is
    allowed (the buffer rule guards the cash); the earmark just reaches zero."""
    k = (account_id, purpose.value)
    open_ = known.get(k) if known is not None else None
    if open_ is None:
        open_ = store.open_earmark(tx.conn, tx.portfolio_id, account_id, purpose.value)
    drawn = min(open_, amount)
    if known is not None:
        known[k] = open_ - max(drawn, 0)
    if drawn <= 0:
        return 0
    store.insert_earmarks(tx.conn, [earmark_row(tx, request_index, account_id, purpose, -drawn, None, reference)])
    store.add_to_earmarked(tx.conn, tx.portfolio_id, [{"aid": account_id, "delta": -drawn}])
    return drawn


def purpose_of_fill(
    kind: AccountKind, action: str, symbol: str | None, multiplier: int, on: date
) -> EarmarkPurpose | None:
    """Which reinvestment earmark a purchase executes: shares bought in a Com-Acc, LEAPS (a long call
    with at least a year to run) bought in a Rev-Acc or Com-Acc, puts sold in a Rev-Acc (new contracts)."""
    if kind not in (AccountKind.REV, AccountKind.COM) or symbol is None:
        return None
    ins = parse_symbol(symbol, multiplier)
    if action == "BTO" and not ins.is_option:
        return EarmarkPurpose.SHARES if kind is AccountKind.COM else None
    if action == "BTO" and ins.put_call == "C" and ins.expiry and (ins.expiry - on).days >= LEAPS_MIN_DAYS:
        return EarmarkPurpose.LEAPS
    if action == "STO" and ins.put_call == "P" and kind is AccountKind.REV:
        return EarmarkPurpose.CONTRACTS
    return None


def draw_down_for_fill(
    tx: Tx,
    account_id: int,
    purpose: EarmarkPurpose,
    fill: FillFacts,
    request_index: int,
    known: OpenEarmarks | None = None,
) -> int:
    """Called by fills inside their unit of work: a purchase executes the earmark planned for it
    (`purpose`: what `purpose_of_fill` says it is; the caller asks first, as most fills are none).
    Shares and LEAPS draw what they cost; a sold put draws the collateral it ties up. `known`: the
    open earmarks the unit of work has read so far (see draw_down)."""
    symbol = fill["symbol"]
    if symbol is None:  # a fact without a symbol (a dividend, a fee) buys nothing
        return 0
    if purpose is EarmarkPurpose.CONTRACTS:
        ins = parse_symbol(symbol, fill.get("multiplier", 100))
        amount = (ins.strike_e4 or 0) * ins.multiplier * fill["quantity"] // 100
    else:
        amount = -fill["cash_cents"]
    reference = f"{fill['action']} {fill['symbol']} fill #{fill['fill_id']}"
    return draw_down(tx, account_id, purpose, amount, reference, request_index, known) if amount > 0 else 0


def earmark_report(engine: Engine, portfolio: str | int | None) -> list[EarmarkLine]:
    """Planned versus executed per account and purpose: what reinvestment earmarked (planned), what
    purchases, tax payments and merges have drawn down since (executed), what is still open."""
    e = earmarks.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        planned = sa.func.sum(sa.case((e.amount_cents > 0, e.amount_cents), else_=0))
        drawn = -sa.func.sum(sa.case((e.amount_cents < 0, e.amount_cents), else_=0))
        q = (
            sa.select(_a.kind, _a.name, e.purpose, planned, drawn)
            .join(accounts, sa.and_(_a.portfolio_id == e.portfolio_id, _a.id == e.account_id))
            .where(e.portfolio_id == pid)
            .group_by(_a.kind, _a.name, e.purpose)
            .order_by(_a.name, e.purpose)
        )
        return [
            {"account": account_label(k, n), "purpose": p, "planned_cents": Cents(int(pl)),
             "executed_cents": Cents(int(dr)), "open_cents": Cents(int(pl) - int(dr))}
            for k, n, p, pl, dr in conn.execute(q)
        ]  # fmt: skip
