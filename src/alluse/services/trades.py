"""Recording broker facts: fills, expiries, assignments, dividends and fees (ALLUSE_RULES §6).

Each fact is one request of a unit of work with its own idempotency key; a batch (a statement import)
is one unit of work applied fact by fact in order, exactly as if the facts had come one by one. A
fact updates, in the same transaction: the journal (balanced legs against ext:market / ext:fees /
ext:dividends), the FIFO lots and the tax ledger (lot_closes), the account's positions, and the
cached cash, positions value and short-put collateral of the account. Facts are never refused by the
buffer rule: an account left below its buffer gets a BUFFER_BREACH alert.

Facts that the method's accounts cannot hold are refused: an uncovered call, selling shares that
cover open short calls, closing more than is open, short stock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind, AccountStatus
from alluse.domain.errors import InvalidInput, RuleViolation
from alluse.domain.instruments import Instrument, InstrumentKind, parse_price, parse_symbol, value_cents
from alluse.domain.ledger import DIVIDENDS, FEES, MARKET, Leg, TransferKind
from alluse.domain.lots import OpenLot, Take, Term, holding_term, take_fifo
from alluse.domain.money import MAX_CENTS
from alluse.services.alerts import alert_event, check_buffer
from alluse.services.earmarks import draw_down_for_fill
from alluse.store.prepared import Prepared, insert
from alluse.store.repo import (
    AccountRow,
    JournalEntry,
    allocate_ids,
    external_account,
    insert_journal,
    load_accounts,
    resolve_account,
)
from alluse.store.schema import accounts, fills, instruments, lot_closes, lots, positions
from alluse.store.uow import Request, Tx, write


class FillAction(StrEnum):
    BTO = "BTO"  # buy to open
    STO = "STO"  # sell to open (short options only)
    BTC = "BTC"  # buy to close
    STC = "STC"  # sell to close
    EXPIRE = "EXPIRE"  # option expired worthless
    ASSIGN = "ASSIGN"  # short option assigned
    DIVIDEND = "DIVIDEND"
    FEE = "FEE"


# A long import writes its rows in slices inside its one transaction: a bounded working set is
# faster than building every row of 100,000 facts in memory first.
FLUSH_EVERY = 5_000

TRADES = frozenset({FillAction.BTO, FillAction.STO, FillAction.BTC, FillAction.STC})


def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


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

    def payload(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "action": self.action.value,
            "symbol": self.symbol,
            "quantity": self.quantity,
            "price": self.price,
            "commission_cents": self.commission_cents,
            "trade_date": self.trade_date.isoformat() if self.trade_date else None,
            "amount_cents": self.amount_cents,
            "multiplier": self.multiplier,
        }


def record_fills(engine: Engine, actor: str, portfolio: str | int | None, facts: list[tuple[str, Fill]]) -> list[dict]:
    """Record broker facts in one unit of work, in order; one result per fact."""
    by_key = dict(facts)

    def apply(tx: Tx, fresh: list[Request]) -> list[dict[str, Any]]:
        # One fill row per fact: reserve their ids in one go (a sequence block on PostgreSQL).
        book = Book(tx, _next_fill=allocate_ids(tx.conn, fills, len(fresh)) - 1)
        out = []
        for i, r in enumerate(fresh):
            out.append(book.record(by_key[r.key], tx.seq(i)))
            if (i + 1) % FLUSH_EVERY == 0:
                book.flush(final=False)
        book.flush()
        for i, (r, req) in enumerate(zip(out, fresh, strict=True)):
            aid = r.pop("_aid")
            r["buffer_breach"] = book.breached.get(aid, False)
            # A purchase executes the reinvestment earmark planned for it (planned versus executed).
            fact = {**r, "multiplier": by_key[req.key].multiplier}
            if drawn := draw_down_for_fill(tx, aid, book.accounts[aid].kind, fact, i):
                r["earmark_drawn_cents"] = drawn
            if r["action"] == FillAction.ASSIGN:
                alert_event(
                    tx, i, "assignment", aid, f"{r['account']}: {r['symbol']} assigned, {r['quantity']} contract(s)"
                )
        return out

    requests = [Request(k, f.payload()) for k, f in facts]
    return write(engine, portfolio, actor, "trade.fill", requests, apply)


def record_fill(engine: Engine, actor: str, portfolio: str | int | None, key: str, fill: Fill) -> dict[str, Any]:
    return record_fills(engine, actor, portfolio, [(key, fill)])[0]


def move_lots_in_kind(tx: Tx, source_id: int, target_id: int, on: date, seq: int) -> dict[str, Any]:
    """Move every open lot of one account into another, in kind, inside the caller's unit of work
    (the lifecycle's merge, ALLUSE_RULES §5.3). Each lot keeps its open date and its remaining cost
    basis; open short puts take their collateral along. The source's lots are closed without
    realizing anything (lot_closes.realized = false) and reopened in the target, linked by a
    MOVE_OUT and a MOVE_IN fill per instrument. Cash is not touched: the caller moves it through the
    journal."""
    p = positions.c
    held = [
        iid
        for (iid,) in tx.conn.execute(
            sa.select(p.instrument_id).where(p.account_id == source_id, p.quantity != 0).order_by(p.instrument_id)
        )
    ]
    if not held:
        return {"instruments": 0, "lots": 0}
    book = Book(tx, _next_fill=allocate_ids(tx.conn, fills, 2 * len(held)) - 1)
    src, dst = book.account(source_id), book.account(target_id)
    if src.id == dst.id:
        raise InvalidInput("cannot move lots into the same account")
    moved = 0
    for iid in held:
        ins = book.instrument_by_id(iid)
        pos = book.positions[src.id][iid]
        out_id, in_id = book.new_fill_id(), book.new_fill_id()
        for lot in list(book.open_lots(src.id, iid)):
            take = Take(lot, lot.remaining, lot.remaining_cash, 0)
            term = Term.SHORT if lot.side == "SHORT" else holding_term(lot.opened_on, on)
            book.takes.append((take, out_id, on, term, False))
            book._new_lot(dst, iid, in_id, lot.side, lot.opened_on, lot.remaining, lot.remaining_cash)
            if lot.side == "SHORT" and ins.is_put:
                src.collateral -= ins.strike_notional(lot.remaining)
                dst.collateral += ins.strike_notional(lot.remaining)
            lot.remaining, lot.remaining_cash = 0, 0
            moved += 1
        book.lots[(src.id, iid)] = []
        qty, mark = pos.quantity, pos.mark_e4
        book._move(src, iid, -qty, on, None)
        target = book._position(dst.id, iid, pos.marked_on)
        if target.quantity == 0:
            target.mark_e4, target.marked_on = mark, pos.marked_on
        book._move(dst, iid, qty, on, None)
        for fid, aid, action in ((out_id, src.id, "MOVE_OUT"), (in_id, dst.id, "MOVE_IN")):
            book.fill_rows.append(
                {
                    "id": fid,
                    "portfolio_id": tx.portfolio_id,
                    "account_id": aid,
                    "instrument_id": iid,
                    "action": action,
                    "quantity": abs(qty),
                    "price_e4": mark,
                    "commission_cents": 0,
                    "cash_cents": 0,
                    "trade_date": on,
                    "week_start": week_start(on),
                    "transfer_id": None,
                    "audit_seq": seq,
                }
            )
    book.flush()
    return {"instruments": len(held), "lots": moved}


# --- the book: the unit of work's view of lots, positions and accounts ---------------------------


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


_i, _l, _p = instruments.c, lots.c, positions.c
_INSTRUMENT_BY_SYMBOL = Prepared(
    sa.select(_i.id, _i.symbol, _i.kind, _i.underlying, _i.put_call, _i.strike_e4, _i.expiry, _i.multiplier).where(
        _i.portfolio_id == sa.bindparam("pid"), _i.symbol == sa.bindparam("symbol")
    )
)
_INSTRUMENT_BY_ID = Prepared(
    sa.select(_i.id, _i.symbol, _i.kind, _i.underlying, _i.put_call, _i.strike_e4, _i.expiry, _i.multiplier).where(
        _i.id == sa.bindparam("iid")
    )
)
_OPEN_LOTS = Prepared(
    sa.select(
        _l.id,
        _l.opened_on,
        _l.remaining,
        _l.remaining_cash_cents,
        _l.open_fill_id,
        _l.side,
        _l.quantity,
        _l.open_cash_cents,
    )
    .where(_l.account_id == sa.bindparam("aid"), _l.instrument_id == sa.bindparam("iid"), _l.remaining > 0)
    .order_by(_l.opened_on, _l.id)
)
# Held positions only: a closed one keeps its row (quantity 0) for good, and an account that trades
# every week gathers hundreds; `Book._position` reads a closed one back when a fill reopens it.
_POSITIONS = Prepared(
    sa.select(_p.instrument_id, _p.quantity, _p.mark_e4, _p.marked_on).where(
        _p.account_id == sa.bindparam("aid"), _p.quantity != 0
    )
)
_POSITION = Prepared(
    sa.select(_p.quantity, _p.mark_e4, _p.marked_on).where(
        _p.account_id == sa.bindparam("aid"), _p.instrument_id == sa.bindparam("iid")
    )
)
_FILL_INSERT = insert(fills)
_LOT_INSERT = insert(lots)
_LOT_UPDATE = Prepared(
    lots.update()
    # account_id too: lots is partitioned by it on PostgreSQL, so this touches one partition.
    .where(_l.id == sa.bindparam("lid"), _l.account_id == sa.bindparam("aid"))
    .values(remaining=sa.bindparam("remaining"), remaining_cash_cents=sa.bindparam("rcash"))
)
# Rows go in with ids reserved up front: the audit manifest then takes them from the statement's own
# parameters instead of reading the new rows back.
_CLOSE_INSERT = insert(lot_closes)
_POS_INSERT = insert(
    positions, ["id", "portfolio_id", "account_id", "instrument_id", "quantity", "mark_e4", "marked_on"]
)
_INSTRUMENT_INSERT = insert(instruments)
_POS_UPDATE = Prepared(
    positions.update()
    .where(_p.account_id == sa.bindparam("aid"), _p.instrument_id == sa.bindparam("iid"))
    .values(quantity=sa.bindparam("qty"), mark_e4=sa.bindparam("mark"), marked_on=sa.bindparam("on"))
)
_ACCOUNT_FIGURES = Prepared(
    accounts.update()
    .where(accounts.c.id == sa.bindparam("aid"))
    .values(
        cash_cents=sa.bindparam("cash"),
        positions_value_cents=sa.bindparam("pv"),
        collateral_cents=sa.bindparam("coll"),
    )
)

_EXT_CASH = Prepared(
    accounts.update()
    .where(accounts.c.id == sa.bindparam("aid"))
    .values(cash_cents=accounts.c.cash_cents + sa.bindparam("d", type_=sa.BigInteger))
)


def _day(value: date | str | None) -> date | None:
    """Prepared statements skip result processing: SQLite hands dates back as ISO text."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _instrument(row: tuple) -> Instrument:
    _id, symbol, kind, underlying, pc, strike, expiry, mult = row
    return Instrument(symbol, InstrumentKind(kind), underlying, pc, strike, _day(expiry), mult)


@dataclass
class Book:
    """Holds what a unit of work has read and changed; `flush` writes it back in a few executemany."""

    tx: Tx
    accounts: dict[int, AccountRow] = field(default_factory=dict)
    refs: dict[str | int, int] = field(default_factory=dict)
    inst_by_symbol: dict[str, int] = field(default_factory=dict)
    inst: dict[int, Instrument] = field(default_factory=dict)
    lots: dict[tuple[int, int], list[BookLot]] = field(default_factory=dict)
    positions: dict[int, dict[int, Position]] = field(default_factory=dict)
    fill_rows: list[dict] = field(default_factory=list)
    takes: list[tuple[Take, int, date, str, bool]] = field(default_factory=list)
    entries: list[JournalEntry] = field(default_factory=list)
    entry_fill: list[int] = field(default_factory=list)
    breached: dict[int, bool] = field(default_factory=dict)
    new_lots: list[BookLot] = field(default_factory=list)
    ext_delta: dict[int, int] = field(default_factory=dict)
    _ext: dict[str, int] = field(default_factory=dict)
    _parsed: dict[tuple[str, int], Instrument] = field(default_factory=dict)
    _next_fill: int = 0

    # -- loading
    def account(self, ref: str | int) -> AccountRow:
        aid = self.refs.get(ref)
        if aid is None:
            aid = self.refs[ref] = (
                ref if isinstance(ref, int) else resolve_account(self.tx.conn, self.tx.portfolio_id, ref)
            )
        acc = self.accounts.get(aid)
        if acc is None:
            acc = self.accounts[aid] = load_accounts(self.tx.conn, self.tx.portfolio_id, [aid])[aid]
            if acc.kind is AccountKind.EXT:
                raise InvalidInput(f"{acc.name} is an external counter-account, not a sleeve")
            if acc.status not in (AccountStatus.ACTIVE, AccountStatus.SUSPENDED):
                raise InvalidInput(f"{acc.label} is {acc.status.value}: it holds no positions any more")
            self.positions[aid] = {
                iid: Position(q, m, _day(on), False) for iid, q, m, on in _POSITIONS.rows(self.tx.conn, aid=aid)
            }
            for iid in self.positions[aid]:
                self.instrument_by_id(iid)
        return acc

    def ext(self, name: str) -> int:
        if name not in self._ext:
            self._ext[name] = external_account(self.tx.conn, self.tx.portfolio_id, name, self.tx.now)
        return self._ext[name]

    def instrument_by_id(self, iid: int) -> Instrument:
        if iid not in self.inst:
            row = _INSTRUMENT_BY_ID.first(self.tx.conn, iid=iid)
            assert row is not None
            self.inst[iid] = _instrument(row)
            self.inst_by_symbol[row[1]] = iid
        return self.inst[iid]

    def instrument(self, spec: Instrument) -> int:
        iid = self.inst_by_symbol.get(spec.symbol)
        if iid is not None:
            return iid
        conn, pid = self.tx.conn, self.tx.portfolio_id
        row = _INSTRUMENT_BY_SYMBOL.first(conn, pid=pid, symbol=spec.symbol)
        if row is None:
            iid = allocate_ids(conn, instruments, 1)
            _INSTRUMENT_INSERT.run(
                conn,
                id=iid,
                portfolio_id=pid,
                symbol=spec.symbol,
                kind=spec.kind.value,
                underlying=spec.underlying,
                put_call=spec.put_call,
                strike_e4=spec.strike_e4,
                expiry=spec.expiry,
                multiplier=spec.multiplier,
            )
            row = (
                iid,
                spec.symbol,
                spec.kind.value,
                spec.underlying,
                spec.put_call,
                spec.strike_e4,
                spec.expiry,
                spec.multiplier,
            )
        elif row[7] != spec.multiplier and spec.is_option:
            raise InvalidInput(f"{spec.symbol} is recorded with multiplier {row[7]}, not {spec.multiplier}")
        self.inst[row[0]] = _instrument(row)
        self.inst_by_symbol[spec.symbol] = row[0]
        return row[0]

    def open_lots(self, aid: int, iid: int) -> list[BookLot]:
        key = (aid, iid)
        found = self.lots.get(key)
        if found is None:
            found = self.lots[key] = [
                BookLot(lid, _day(on), rem, rcash, aid, iid, fid, side, qty, ocash, False)
                for lid, on, rem, rcash, fid, side, qty, ocash in _OPEN_LOTS.rows(self.tx.conn, aid=aid, iid=iid)
            ]
        return found

    def parse(self, symbol: str, multiplier: int = 100) -> Instrument:
        key = (symbol, multiplier)
        spec = self._parsed.get(key)
        if spec is None:
            spec = self._parsed[key] = parse_symbol(symbol, multiplier)
        return spec

    # -- recording
    def new_fill_id(self) -> int:
        self._next_fill += 1
        return self._next_fill

    def record(self, f: Fill, seq: int) -> dict[str, Any]:
        acc = self.account(f.account)
        on = f.trade_date
        spec = self.parse(f.symbol, f.multiplier) if f.symbol else None
        if on is None:
            if f.action is FillAction.EXPIRE and spec is not None and spec.expiry:
                on = spec.expiry
            else:
                raise InvalidInput(f"{f.action.value} needs a trade date")
        iid = self.instrument(spec) if spec else None
        ins = self.inst[iid] if iid is not None else None
        price = parse_price(f.price)
        fill_id = self.new_fill_id()
        realized_before = len(self.takes)
        handler = {
            FillAction.BTO: self._open,
            FillAction.STO: self._open,
            FillAction.BTC: self._close,
            FillAction.STC: self._close,
            FillAction.EXPIRE: self._expire,
            FillAction.ASSIGN: self._assign,
        }.get(f.action)
        legs: list[Leg]
        if handler is not None:
            assert ins is not None and iid is not None
            gross = handler(acc, iid, ins, f, price, on, fill_id)
            cash = gross - f.commission_cents
            legs = [Leg(acc.id, cash), Leg(self.ext(MARKET), -gross), Leg(self.ext(FEES), f.commission_cents)]
            kind = TransferKind.ASSIGNMENT if f.action is FillAction.ASSIGN else TransferKind.TRADE
        elif f.action is FillAction.DIVIDEND:
            cash = f.amount_cents - f.commission_cents
            legs = [
                Leg(acc.id, cash),
                Leg(self.ext(DIVIDENDS), -f.amount_cents),
                Leg(self.ext(FEES), f.commission_cents),
            ]
            kind = TransferKind.DIVIDEND
        else:
            cash = -f.amount_cents - f.commission_cents
            legs = [Leg(acc.id, cash), Leg(self.ext(FEES), -cash)]
            kind = TransferKind.FEE
        legs = [leg for leg in legs if leg.amount_cents]
        if legs:
            acc.cash += cash
            for leg in legs:
                if leg.account_id == acc.id:
                    continue
                self.ext_delta[leg.account_id] = self.ext_delta.get(leg.account_id, 0) + leg.amount_cents
            self.entries.append(JournalEntry(kind, legs, seq, memo=f"{f.action.value} {f.symbol or ''}".strip()))
            self.entry_fill.append(len(self.fill_rows))
        self.fill_rows.append(
            {
                "id": fill_id,
                "portfolio_id": self.tx.portfolio_id,
                "account_id": acc.id,
                "instrument_id": iid,
                "action": f.action.value,
                "quantity": f.quantity,
                "price_e4": price,
                "commission_cents": f.commission_cents,
                "cash_cents": cash,
                "trade_date": on,
                "week_start": week_start(on),
                "transfer_id": None,
                "audit_seq": seq,
            }
        )
        realized = sum(t.gain for t, *_rest, is_realized in self.takes[realized_before:] if is_realized)
        return {
            "fill_id": fill_id,
            "account": acc.name,
            "action": f.action.value,
            "symbol": ins.symbol if ins else None,
            "quantity": f.quantity,
            "cash_cents": cash,
            "realized_cents": realized,
            "trade_date": on.isoformat(),
            "_aid": acc.id,
        }

    def _position(self, aid: int, iid: int, on: date) -> Position:
        pos = self.positions[aid].get(iid)
        if pos is None:
            row = _POSITION.first(self.tx.conn, aid=aid, iid=iid)
            pos = Position(0, 0, on, True) if row is None else Position(row[0], row[1], _day(row[2]), False)
            self.positions[aid][iid] = pos
        return pos

    def _move(self, acc: AccountRow, iid: int, delta_qty: int, on: date, price: int | None) -> None:
        """Change a position's quantity (and its valuation price when the fill is at least as new as
        the last mark), keeping the account's positions value in step."""
        ins = self.inst[iid]
        pos = self._position(acc.id, iid, on)
        before = value_cents(pos.quantity, pos.mark_e4, ins.multiplier)
        pos.quantity += delta_qty
        if price is not None and on >= pos.marked_on:
            pos.mark_e4, pos.marked_on = price, on
        acc.positions_value += value_cents(pos.quantity, pos.mark_e4, ins.multiplier) - before
        pos.dirty = True

    def _short_call_contracts(self, aid: int, underlying: str) -> int:
        n = 0
        for iid, pos in self.positions[aid].items():
            ins = self.inst[iid]
            if ins.is_call and ins.underlying == underlying and pos.quantity < 0:
                n += -pos.quantity * ins.multiplier
        return n

    def _shares(self, aid: int, underlying: str) -> int:
        iid = self.inst_by_symbol.get(underlying)
        pos = self.positions[aid].get(iid) if iid is not None else None
        return pos.quantity if pos else 0

    def _new_lot(self, acc: AccountRow, iid: int, fill_id: int, side: str, on: date, qty: int, cash: int) -> None:
        lot = BookLot(0, on, qty, cash, acc.id, iid, fill_id, side, qty, cash, True)
        self.open_lots(acc.id, iid).append(lot)
        self.new_lots.append(lot)

    def _take(
        self,
        acc: AccountRow,
        iid: int,
        side: str,
        qty: int,
        close_cash: int,
        on: date,
        fill_id: int,
        realized: bool = True,
    ) -> int:
        ins = self.inst[iid]
        open_side = [lot for lot in self.open_lots(acc.id, iid) if lot.side == side]
        taken = take_fifo(open_side, qty, close_cash, f"{side.lower()} {ins.symbol} in {acc.label}")
        # Closed lots leave the working list (flush finds them through new_lots and takes).
        self.lots[(acc.id, iid)] = [lot for lot in self.lots[(acc.id, iid)] if lot.remaining]
        moved = 0
        for t in taken:
            # Short option premium is short-term whatever the holding period (IRC §1234).
            term = Term.SHORT if side == "SHORT" else holding_term(t.lot.opened_on, on)
            self.takes.append((t, fill_id, on, term, realized))
            moved += t.open_cash
        return moved

    def _open(self, acc: AccountRow, iid: int, ins: Instrument, f: Fill, price: int, on: date, fill_id: int) -> int:
        gross = value_cents(f.quantity, price, ins.multiplier)
        lots_here = self.open_lots(acc.id, iid)
        if f.action is FillAction.BTO:
            if any(lot.side == "SHORT" and lot.remaining for lot in lots_here):
                raise RuleViolation(f"{ins.symbol} is held short in {acc.label}: record the purchase as BTC")
            self._new_lot(acc, iid, fill_id, "LONG", on, f.quantity, -gross - f.commission_cents)
            self._move(acc, iid, f.quantity, on, price)
            return -gross
        if not ins.is_option:
            raise RuleViolation(f"selling {ins.symbol} short is not part of the method: only options are sold to open")
        if any(lot.side == "LONG" and lot.remaining for lot in lots_here):
            raise RuleViolation(f"{ins.symbol} is held long in {acc.label}: record the sale as STC")
        if ins.is_call:
            covered = self._shares(acc.id, ins.underlying) - self._short_call_contracts(acc.id, ins.underlying)
            if f.quantity * ins.multiplier > covered:
                raise RuleViolation(
                    f"calls must be covered: {acc.label} holds {max(0, covered)} uncovered {ins.underlying} shares, "
                    f"{f.quantity} × {ins.multiplier} needed"
                )
        else:
            acc.collateral += ins.strike_notional(f.quantity)
        self._new_lot(acc, iid, fill_id, "SHORT", on, f.quantity, gross - f.commission_cents)
        self._move(acc, iid, -f.quantity, on, price)
        return gross

    def _close(self, acc: AccountRow, iid: int, ins: Instrument, f: Fill, price: int, on: date, fill_id: int) -> int:
        gross = value_cents(f.quantity, price, ins.multiplier)
        if f.action is FillAction.STC:
            if not ins.is_option:
                left = self._shares(acc.id, ins.symbol) - f.quantity
                needed = self._short_call_contracts(acc.id, ins.symbol)
                if 0 <= left < needed:
                    raise RuleViolation(
                        f"selling {f.quantity} {ins.symbol} would uncover short calls in {acc.label} "
                        f"({needed} shares must stay): close the calls first"
                    )
            self._take(acc, iid, "LONG", f.quantity, gross - f.commission_cents, on, fill_id)
            self._move(acc, iid, -f.quantity, on, price)
            return gross
        self._take(acc, iid, "SHORT", f.quantity, -gross - f.commission_cents, on, fill_id)
        if ins.is_put:
            acc.collateral -= ins.strike_notional(f.quantity)
        self._move(acc, iid, f.quantity, on, price)
        return -gross

    def _expire(self, acc: AccountRow, iid: int, ins: Instrument, f: Fill, _p: int, on: date, fill_id: int) -> int:
        if not ins.is_option:
            raise InvalidInput(f"{ins.symbol} is not an option: only options expire")
        pos = self.positions[acc.id].get(iid)
        if pos is not None and pos.quantity < 0:
            self._take(acc, iid, "SHORT", f.quantity, -f.commission_cents, on, fill_id)
            if ins.is_put:
                acc.collateral -= ins.strike_notional(f.quantity)
            self._move(acc, iid, f.quantity, on, 0)
        else:
            self._take(acc, iid, "LONG", f.quantity, -f.commission_cents, on, fill_id)
            self._move(acc, iid, -f.quantity, on, 0)
        return 0

    def _assign(self, acc: AccountRow, iid: int, ins: Instrument, f: Fill, _p: int, on: date, fill_id: int) -> int:
        """A short put assigned: shares in at the strike, the premium lowering their basis. A short call
        assigned: shares delivered at the strike, the premium added to their proceeds."""
        if not ins.is_option:
            raise InvalidInput(f"{ins.symbol} is not an option: only short options are assigned")
        shares = f.quantity * ins.multiplier
        notional = ins.strike_notional(f.quantity)
        stock_iid = self.instrument(self.parse(ins.underlying))
        premium = self._take(acc, iid, "SHORT", f.quantity, 0, on, fill_id, realized=False)
        self._move(acc, iid, f.quantity, on, None)
        if ins.is_put:
            acc.collateral -= notional
            self._new_lot(acc, stock_iid, fill_id, "LONG", on, shares, -notional - f.commission_cents + premium)
            self._move(acc, stock_iid, shares, on, ins.strike_e4)
            return -notional
        self._take(acc, stock_iid, "LONG", shares, notional - f.commission_cents + premium, on, fill_id)
        self._move(acc, stock_iid, -shares, on, None)
        return notional

    # -- writing back
    def flush(self, final: bool = True) -> None:
        """Write what was recorded since the last flush. Only the final flush judges the buffer: an
        import is one fact for the alerts, not a series of transient breaches."""
        conn, pid, now = self.tx.conn, self.tx.portfolio_id, self.tx.now
        tids = insert_journal(conn, pid, now, self.entries) if self.entries else []
        for idx, tid in zip(self.entry_fill, tids, strict=True):
            self.fill_rows[idx]["transfer_id"] = tid
        _FILL_INSERT.many(conn, self.fill_rows)
        new = self.new_lots
        if new:
            first = allocate_ids(conn, lots, len(new))
            for i, lot in enumerate(new):
                lot.id = first + i
            _LOT_INSERT.many(
                conn,
                [
                    {
                        "id": lot.id,
                        "portfolio_id": pid,
                        "account_id": lot.account_id,
                        "instrument_id": lot.instrument_id,
                        "open_fill_id": lot.fill_id,
                        "side": lot.side,
                        "opened_on": lot.opened_on,
                        "quantity": lot.quantity,
                        "open_cash_cents": lot.open_cash,
                        "remaining": lot.remaining,
                        "remaining_cash_cents": lot.remaining_cash,
                    }
                    for lot in new
                ],
            )
        touched = {id(t.lot): t.lot for t, *_ in self.takes if not t.lot.new}  # type: ignore[attr-defined]
        _LOT_UPDATE.many(
            conn,
            [
                {"lid": lot.id, "aid": lot.account_id, "remaining": lot.remaining, "rcash": lot.remaining_cash}
                for lot in touched.values()
            ],
        )
        first = allocate_ids(conn, lot_closes, len(self.takes)) if self.takes else 0
        _CLOSE_INSERT.many(
            conn,
            [
                {
                    "id": first + i,
                    "portfolio_id": pid,
                    "account_id": t.lot.account_id,  # type: ignore[attr-defined]
                    "lot_id": t.lot.id,
                    "fill_id": fill_id,
                    "quantity": t.quantity,
                    "closed_on": on,
                    "open_cash_cents": t.open_cash,
                    "close_cash_cents": t.close_cash,
                    "gain_cents": t.gain,
                    "term": term,
                    "realized": realized,
                }
                for i, (t, fill_id, on, term, realized) in enumerate(self.takes)
            ],
        )
        pos_new, pos_upd = [], []
        for aid, by_iid in self.positions.items():
            for iid, p in by_iid.items():
                if p.new:
                    pos_new.append(
                        {
                            "portfolio_id": pid,
                            "account_id": aid,
                            "instrument_id": iid,
                            "quantity": p.quantity,
                            "mark_e4": p.mark_e4,
                            "marked_on": p.marked_on,
                        }
                    )
                elif p.dirty:
                    pos_upd.append({"aid": aid, "iid": iid, "qty": p.quantity, "mark": p.mark_e4, "on": p.marked_on})
        if pos_new:
            first = allocate_ids(conn, positions, len(pos_new))
            for i, row in enumerate(pos_new):
                row["id"] = first + i
        _POS_INSERT.many(conn, pos_new)
        _POS_UPDATE.many(conn, pos_upd)
        _ACCOUNT_FIGURES.many(
            conn,
            [
                {"aid": a.id, "cash": a.cash, "pv": a.positions_value, "coll": a.collateral}
                for a in self.accounts.values()
            ],
        )
        _EXT_CASH.many(conn, [{"aid": a, "d": d} for a, d in self.ext_delta.items() if d])
        for lot in self.new_lots:
            lot.new = False
        for by_iid in self.positions.values():
            for p in by_iid.values():
                p.new = p.dirty = False
        self.new_lots, self.takes, self.entries, self.entry_fill, self.fill_rows = [], [], [], [], []
        self.ext_delta = {}
        if final:
            for acc in self.accounts.values():
                self.breached[acc.id] = check_buffer(self.tx, acc, "a broker fact")
