"""Booking a broker fact against open lots (ALLUSE_RULES §6), pure.

Given what a unit of work holds of an account (its cash figures, positions and FIFO lots), `Booking`
decides what one fact does: which lots it closes and with what gain and term, which lot it opens,
which ledger legs post, what the positions and the account's cached figures become. It reads and
writes no database: the service loads what a fact needs before asking, and writes back what changed
afterwards (`closes`, `new_lots`, dirty positions, the account figures and `ext_delta`).

Facts the method's accounts cannot hold are refused: an uncovered call, selling shares that cover
open short calls, closing more than is open, short stock.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol, TypedDict

from alluse.domain.accounts import AccountKind, AccountStatus
from alluse.domain.errors import InvalidInput, RuleViolation
from alluse.domain.instruments import Instrument, parse_price, value_cents
from alluse.domain.ledger import DIVIDENDS, FEES, MARKET, Leg, TransferKind, new_leg
from alluse.domain.lots import OpenLot, Side, Take, Term, holding_term, take_fifo
from alluse.domain.money import MAX_CENTS, Cents


class FillAction(StrEnum):
    BTO = "BTO"  # buy to open
    STO = "STO"  # sell to open (short options only)
    BTC = "BTC"  # buy to close
    STC = "STC"  # sell to close
    EXPIRE = "EXPIRE"  # option expired worthless
    ASSIGN = "ASSIGN"  # short option assigned
    DIVIDEND = "DIVIDEND"
    FEE = "FEE"


TRADES = frozenset({FillAction.BTO, FillAction.STO, FillAction.BTC, FillAction.STC})
# The facts that open or close lots, and post a trade's legs.
BOOKS_LOTS = TRADES | {FillAction.EXPIRE, FillAction.ASSIGN}
LONG, SHORT = Side.LONG, Side.SHORT


_OPENS = frozenset({FillAction.BTO, FillAction.STO})
_CLOSES = frozenset({FillAction.BTC, FillAction.STC})

# An import books a few distinct prices many times (each was checked when its Fill was made): parsed
# once each. Typed, so a price given as text and one given as a number are kept apart.
_price_e4 = functools.lru_cache(maxsize=4096, typed=True)(parse_price)


@functools.lru_cache(maxsize=4096)  # every fill row carries one; an import repeats a few dates
def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


class FillPayload(TypedDict):
    """A fact as the audit record stores it."""

    account: str | int
    action: str
    symbol: str | None
    quantity: int
    price: str
    commission_cents: Cents
    trade_date: str | None
    amount_cents: Cents
    multiplier: int


@dataclass(frozen=True, slots=True)
class Fill:
    """One broker fact. `quantity`: shares or contracts (> 0); `price`: per share, 4 decimals at most;
    `amount_cents`: the cash of a DIVIDEND or FEE. An EXPIRE or ASSIGN has no price."""

    account: str | int
    action: FillAction
    symbol: str | None
    quantity: int = 0
    price: str = "0"
    commission_cents: int = 0
    trade_date: date | None = None
    amount_cents: int = 0
    multiplier: int = 100

    def __post_init__(self) -> None:
        if self.action in TRADES or self.action in (FillAction.EXPIRE, FillAction.ASSIGN):
            if self.symbol is None:
                raise InvalidInput(f"{self.action.value} needs an instrument symbol")
            if not isinstance(self.quantity, int) or self.quantity <= 0:
                raise InvalidInput(f"{self.action.value} needs a positive whole quantity, got {self.quantity!r}")
        if self.action in (FillAction.DIVIDEND, FillAction.FEE) and not 0 < self.amount_cents <= MAX_CENTS:
            raise InvalidInput(f"{self.action.value} needs a positive amount")
        if not 0 <= self.commission_cents <= MAX_CENTS:
            raise InvalidInput("commission must not be negative")
        if self.quantity > 10**9:
            raise InvalidInput("quantity is implausibly large")
        parse_price(self.price)

    def payload(self) -> FillPayload:
        return {
            "account": self.account,
            "action": str(self.action),
            "symbol": self.symbol,
            "quantity": self.quantity,
            "price": self.price,
            "commission_cents": Cents(self.commission_cents),
            "trade_date": self.trade_date.isoformat() if self.trade_date else None,
            "amount_cents": Cents(self.amount_cents),
            "multiplier": self.multiplier,
        }


def trade_date(f: Fill, spec: Instrument | None) -> date:
    """A fact's date; an expiry without one happens on the option's expiry date."""
    if f.trade_date is not None:
        return f.trade_date
    if f.action is FillAction.EXPIRE and spec is not None and spec.expiry:
        return spec.expiry
    raise InvalidInput(f"{f.action.value} needs a trade date")


def _posting(f: Fill, aid: int, gross: int, ext: Mapping[str, int]) -> tuple[TransferKind, int, list[Leg]]:
    """A fact's journal entry: its kind, the account's cash and the non-zero legs. `gross`: what a
    trade, expiry or assignment moves before commission."""
    commission = f.commission_cents
    legs: tuple[tuple[int, int], ...]
    if f.action in BOOKS_LOTS:
        cash = gross - commission
        legs = ((aid, cash), (ext[MARKET], -gross), (ext[FEES], commission))
        kind = TransferKind.ASSIGNMENT if f.action is FillAction.ASSIGN else TransferKind.TRADE
    elif f.action is FillAction.DIVIDEND:
        cash = f.amount_cents - commission
        legs = ((aid, cash), (ext[DIVIDENDS], -f.amount_cents), (ext[FEES], commission))
        kind = TransferKind.DIVIDEND
    else:
        cash = -f.amount_cents - commission
        legs = ((aid, cash), (ext[FEES], -cash))
        kind = TransferKind.FEE
    return kind, cash, [new_leg(leg) for leg in legs if leg[1]]


class Holder(Protocol):
    """The figures of an account a booking changes (a unit of work's account row satisfies it)."""

    id: int
    kind: AccountKind
    name: str
    status: AccountStatus
    label: str
    cash: int
    positions_value: int
    collateral: int


def check_holds_positions(acc: Holder) -> None:
    if acc.kind is AccountKind.EXT:
        raise InvalidInput(f"{acc.name} is an external counter-account, not a sleeve")
    if acc.status not in (AccountStatus.ACTIVE, AccountStatus.SUSPENDED):
        raise InvalidInput(f"{acc.label} is {acc.status.value}: it holds no positions any more")


@dataclass(slots=True)
class BookLot(OpenLot):
    account_id: int
    instrument_id: int
    fill_id: int
    side: str
    quantity: int
    open_cash: int
    new: bool


@dataclass(slots=True)
class Position:
    quantity: int
    mark_e4: int
    marked_on: date
    new: bool
    dirty: bool = False


class Close(NamedTuple):
    """Part of a lot closed by a fill; `realized` is false when the gain moves on instead (an assigned
    option's premium goes into the shares' basis; a lot moved in kind)."""

    take: Take
    fill_id: int
    on: date
    term: str
    realized: bool

    @property
    def lot(self) -> BookLot:
        lot = self.take.lot
        assert isinstance(lot, BookLot)
        return lot


class Booked(NamedTuple):
    """What one fact became: its fill, its cash, its journal entry (no legs when no cash moved).
    Immutable records made once or twice per fact (Booked, Close, lots' Take) are named tuples: a
    frozen dataclass sets each field through `object.__setattr__`, 2.2 µs for this one against 0.5 µs
    (and made from a tuple, `_new_booked`, without the named tuple's own Python `__new__`)."""

    fill_id: int
    account_id: int
    account: str
    instrument_id: int | None
    symbol: str | None
    action: FillAction
    quantity: int
    price_e4: int
    commission_cents: int
    cash_cents: int
    realized_cents: int
    trade_date: date
    kind: TransferKind
    legs: list[Leg]
    memo: str


# Records made once or more per fact, built from a tuple in C as `new_leg` is (calling a named tuple
# runs a Python frame of its own, 0.6 µs for a Booked).
_new_booked = functools.partial(tuple.__new__, Booked)
_new_close = functools.partial(tuple.__new__, Close)


@dataclass(frozen=True, slots=True)
class MovedInKind:
    """One instrument's lots moved from one account to another, linked by a MOVE_OUT and a MOVE_IN fill."""

    instrument_id: int
    out_fill_id: int
    in_fill_id: int
    quantity: int
    mark_e4: int
    lots: int


@dataclass(init=False)
class Booking:
    """What a unit of work holds of lots, positions and accounts, and the decisions on it. Every
    account, instrument and lot list a fact touches must be loaded before the fact is booked."""

    accounts: dict[int, Holder]
    inst: dict[int, Instrument]
    inst_by_symbol: dict[str, int]
    lots: dict[tuple[int, int], list[BookLot]]
    positions: dict[int, dict[int, Position]]
    # What changed since the last write-back.
    closes: list[Close]
    new_lots: list[BookLot]
    ext_delta: dict[int, int]

    def __init__(self) -> None:
        # Made once per unit of work: plain assignments (a dataclass's `__init__` calls a default
        # factory per field).
        self.accounts, self.inst, self.inst_by_symbol, self.lots, self.positions = {}, {}, {}, {}, {}
        self.closes, self.new_lots, self.ext_delta = [], [], {}

    def add_instrument(self, iid: int, ins: Instrument) -> None:
        self.inst[iid] = ins
        self.inst_by_symbol[ins.symbol] = iid

    # -- a fact
    def book(
        self,
        f: Fill,
        acc: Holder,
        iid: int | None,
        on: date,
        fill_id: int,
        ext: Mapping[str, int],
        stock_iid: int | None = None,
    ) -> Booked:
        """Book `f` into `acc`. `iid`: its instrument; `stock_iid`: the underlying shares of an
        assigned option; `ext`: the ids of the external counter-accounts (market, fees, dividends)."""
        ins = self.inst[iid] if iid is not None else None
        price = _price_e4(f.price)
        closes_before = len(self.closes)
        action = f.action
        # The gross cash of a trade, expiry or assignment: positive in, negative out.
        gross = 0
        if action in BOOKS_LOTS:
            assert ins is not None and iid is not None
            if action in _OPENS:
                gross = self._open(acc, iid, ins, f, price, on, fill_id)
            elif action in _CLOSES:
                gross = self._close(acc, iid, ins, f, price, on, fill_id)
            elif action is FillAction.EXPIRE:
                gross = self._expire(acc, iid, ins, f, on, fill_id)
            else:
                gross = self._assign(acc, iid, ins, f, on, fill_id, stock_iid)
        kind, cash, legs = _posting(f, acc.id, gross, ext)
        if legs:
            acc.cash += cash
            ext_delta = self.ext_delta
            for aid, amount in legs:
                if aid != acc.id:
                    ext_delta[aid] = ext_delta.get(aid, 0) + amount
        closed = len(self.closes) > closes_before  # most facts close nothing: no generator for them
        realized = sum(c.take.gain for c in self.closes[closes_before:] if c.realized) if closed else 0
        return _new_booked((fill_id, acc.id, acc.name, iid, ins.symbol if ins else None, action, f.quantity, price,
                            f.commission_cents, cash, realized, on, kind, legs, f"{action} {f.symbol or ''}".strip()))  # fmt: skip

    def _open(self, acc: Holder, iid: int, ins: Instrument, f: Fill, price: int, on: date, fill_id: int) -> int:
        gross = value_cents(f.quantity, price, ins.multiplier)
        lots_here = self.lots[(acc.id, iid)]
        if f.action is FillAction.BTO:
            if lots_here and any(lot.side == SHORT and lot.remaining for lot in lots_here):
                raise RuleViolation(f"{ins.symbol} is held short in {acc.label}: record the purchase as BTC")
            self._new_lot(acc.id, iid, fill_id, LONG, on, f.quantity, -gross - f.commission_cents)
            self._move(acc, iid, f.quantity, on, price)
            return -gross
        if not ins.is_option:
            raise RuleViolation(f"selling {ins.symbol} short is not part of the method: only options are sold to open")
        if lots_here and any(lot.side == LONG and lot.remaining for lot in lots_here):
            raise RuleViolation(f"{ins.symbol} is held long in {acc.label}: record the sale as STC")
        if ins.is_call:
            covered = self.shares(acc.id, ins.underlying) - self.short_call_shares(acc.id, ins.underlying)
            if f.quantity * ins.multiplier > covered:
                raise RuleViolation(
                    f"calls must be covered: {acc.label} holds {max(0, covered)} uncovered {ins.underlying} shares, "
                    f"{f.quantity} × {ins.multiplier} needed"
                )
        else:
            acc.collateral += ins.strike_notional(f.quantity)
        self._new_lot(acc.id, iid, fill_id, SHORT, on, f.quantity, gross - f.commission_cents)
        self._move(acc, iid, -f.quantity, on, price)
        return gross

    def _close(self, acc: Holder, iid: int, ins: Instrument, f: Fill, price: int, on: date, fill_id: int) -> int:
        gross = value_cents(f.quantity, price, ins.multiplier)
        if f.action is FillAction.STC:
            if not ins.is_option:
                left = self.shares(acc.id, ins.symbol) - f.quantity
                needed = self.short_call_shares(acc.id, ins.symbol)
                if 0 <= left < needed:
                    raise RuleViolation(
                        f"selling {f.quantity} {ins.symbol} would uncover short calls in {acc.label} "
                        f"({needed} shares must stay): close the calls first"
                    )
            self._take(acc, iid, LONG, f.quantity, gross - f.commission_cents, on, fill_id)
            self._move(acc, iid, -f.quantity, on, price)
            return gross
        self._take(acc, iid, SHORT, f.quantity, -gross - f.commission_cents, on, fill_id)
        if ins.is_put:
            acc.collateral -= ins.strike_notional(f.quantity)
        self._move(acc, iid, f.quantity, on, price)
        return -gross

    def _expire(self, acc: Holder, iid: int, ins: Instrument, f: Fill, on: date, fill_id: int) -> int:
        if not ins.is_option:
            raise InvalidInput(f"{ins.symbol} is not an option: only options expire")
        pos = self.positions[acc.id].get(iid)
        if pos is not None and pos.quantity < 0:
            self._take(acc, iid, SHORT, f.quantity, -f.commission_cents, on, fill_id)
            if ins.is_put:
                acc.collateral -= ins.strike_notional(f.quantity)
            self._move(acc, iid, f.quantity, on, 0)
        else:
            self._take(acc, iid, LONG, f.quantity, -f.commission_cents, on, fill_id)
            self._move(acc, iid, -f.quantity, on, 0)
        return 0

    def _assign(
        self, acc: Holder, iid: int, ins: Instrument, f: Fill, on: date, fill_id: int, stock_iid: int | None
    ) -> int:
        """A short put assigned: shares in at the strike, the premium lowering their basis. A short call
        assigned: shares delivered at the strike, the premium added to their proceeds."""
        if not ins.is_option:
            raise InvalidInput(f"{ins.symbol} is not an option: only short options are assigned")
        assert stock_iid is not None, "an assignment needs its underlying shares loaded"
        shares = f.quantity * ins.multiplier
        notional = ins.strike_notional(f.quantity)
        premium = self._take(acc, iid, SHORT, f.quantity, 0, on, fill_id, realized=False)
        self._move(acc, iid, f.quantity, on, None)
        if ins.is_put:
            acc.collateral -= notional
            self._new_lot(acc.id, stock_iid, fill_id, LONG, on, shares, -notional - f.commission_cents + premium)
            self._move(acc, stock_iid, shares, on, ins.strike_e4)
            return -notional
        self._take(acc, stock_iid, LONG, shares, notional - f.commission_cents + premium, on, fill_id)
        self._move(acc, stock_iid, -shares, on, None)
        return notional

    # -- moving lots between accounts
    def move_in_kind(
        self, src: Holder, dst: Holder, held: Iterable[int], on: date, fill_ids: Iterable[int]
    ) -> list[MovedInKind]:
        """Move every open lot of `held` instruments from `src` into `dst` (the lifecycle's merge,
        ALLUSE_RULES §5.3). Each lot keeps its open date and its remaining cost basis; open short puts
        take their collateral along. The source's lots close without realizing anything and reopen in
        the target. `fill_ids`: two per instrument (MOVE_OUT, MOVE_IN). Cash is not touched."""
        if src.id == dst.id:
            raise InvalidInput("cannot move lots into the same account")
        ids = iter(fill_ids)
        out: list[MovedInKind] = []
        for iid in held:
            ins = self.inst[iid]
            pos = self.positions[src.id][iid]
            out_id, in_id = next(ids), next(ids)
            moved = 0
            for lot in list(self.lots[(src.id, iid)]):
                take = Take(lot, lot.remaining, lot.remaining_cash, 0)
                term = Term.SHORT if lot.side == SHORT else holding_term(lot.opened_on, on)
                self.closes.append(Close(take, out_id, on, term, False))
                self._new_lot(dst.id, iid, in_id, lot.side, lot.opened_on, lot.remaining, lot.remaining_cash)
                if lot.side == SHORT and ins.is_put:
                    src.collateral -= ins.strike_notional(lot.remaining)
                    dst.collateral += ins.strike_notional(lot.remaining)
                lot.remaining, lot.remaining_cash = 0, 0
                moved += 1
            self.lots[(src.id, iid)] = []
            qty, mark = pos.quantity, pos.mark_e4
            self._move(src, iid, -qty, on, None)
            target = self.position(dst.id, iid, pos.marked_on)
            if target.quantity == 0:
                target.mark_e4, target.marked_on = mark, pos.marked_on
            self._move(dst, iid, qty, on, None)
            out.append(MovedInKind(iid, out_id, in_id, abs(qty), mark, moved))
        return out

    # -- what the account holds
    def position(self, aid: int, iid: int, on: date) -> Position:
        pos = self.positions[aid].get(iid)
        if pos is None:
            pos = self.positions[aid][iid] = Position(0, 0, on, True)
        return pos

    def shares(self, aid: int, underlying: str) -> int:
        iid = self.inst_by_symbol.get(underlying)
        pos = self.positions[aid].get(iid) if iid is not None else None
        return pos.quantity if pos else 0

    def short_call_shares(self, aid: int, underlying: str) -> int:
        """Shares that open short calls on `underlying` need to stay covered."""
        n = 0
        for iid, pos in self.positions[aid].items():
            ins = self.inst[iid]
            if ins.is_call and ins.underlying == underlying and pos.quantity < 0:
                n += -pos.quantity * ins.multiplier
        return n

    def _move(self, acc: Holder, iid: int, delta_qty: int, on: date, price: int | None) -> None:
        """Change a position's quantity (and its valuation price when the fill is at least as new as
        the last mark), keeping the account's positions value in step."""
        ins = self.inst[iid]
        pos = self.positions[acc.id].get(iid) or self.position(acc.id, iid, on)
        before = value_cents(pos.quantity, pos.mark_e4, ins.multiplier)
        pos.quantity += delta_qty
        if price is not None and on >= pos.marked_on:
            pos.mark_e4, pos.marked_on = price, on
        acc.positions_value += value_cents(pos.quantity, pos.mark_e4, ins.multiplier) - before
        pos.dirty = True

    def _new_lot(self, aid: int, iid: int, fill_id: int, side: str, on: date, qty: int, cash: int) -> None:
        lot = BookLot(0, on, qty, cash, aid, iid, fill_id, side, qty, cash, True)
        self.lots[(aid, iid)].append(lot)
        self.new_lots.append(lot)

    def _take(
        self,
        acc: Holder,
        iid: int,
        side: str,
        qty: int,
        close_cash: int,
        on: date,
        fill_id: int,
        realized: bool = True,
    ) -> int:
        """Close `qty` of the `side` lots FIFO; returns the opening cash they carried."""
        ins = self.inst[iid]
        key = (acc.id, iid)
        open_side: list[OpenLot] = [lot for lot in self.lots[key] if lot.side == side]
        taken = take_fifo(open_side, qty, close_cash, lambda: f"{side.lower()} {ins.symbol} in {acc.label}")
        # Closed lots leave the working list (the write-back finds them through new_lots and closes).
        self.lots[key] = [lot for lot in self.lots[key] if lot.remaining]
        moved = 0
        for t in taken:
            # Short option premium is short-term whatever the holding period (IRC §1234).
            term = Term.SHORT if side == SHORT else holding_term(t.lot.opened_on, on)
            self.closes.append(_new_close((t, fill_id, on, term, realized)))
            moved += t.open_cash
        return moved
