"""Reading and writing the book: instruments, fills, FIFO lots, lot closes and positions.

A booking (`domain.booking.Booking`) decides on what these functions load, and `write_booking` writes
back what it changed in a few executemany. The hot statements are prepared once per dialect.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple, cast

import sqlalchemy as sa

from alluse.domain.booking import Booking, BookLot, Close, Holder, Position, week_start
from alluse.domain.instruments import Instrument, InstrumentKind
from alluse.domain.ledger import COUNTER_ACCOUNTS
from alluse.store.ids import allocate_blocks, draw_ids, pool_head
from alluse.store.prepared import Prepared, insert
from alluse.store.repo import ACCOUNT_COLUMNS, AccountRow, account_row, allocate_ids
from alluse.store.schema import accounts, fills, instruments, lot_closes, lots, positions

_i, _l, _p = instruments.c, lots.c, positions.c
_INSTRUMENT_COLS = (_i.id, _i.symbol, _i.kind, _i.underlying, _i.put_call, _i.strike_e4, _i.expiry, _i.multiplier)
_INSTRUMENT_BY_SYMBOL = Prepared(
    sa.select(*_INSTRUMENT_COLS).where(_i.portfolio_id == sa.bindparam("pid"), _i.symbol == sa.bindparam("symbol"))
)
_INSTRUMENT_BY_ID = Prepared(
    sa.select(*_INSTRUMENT_COLS).where(_i.portfolio_id == sa.bindparam("pid"), _i.id == sa.bindparam("iid"))
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
    .where(
        _l.portfolio_id == sa.bindparam("pid"),
        _l.account_id == sa.bindparam("aid"),
        _l.instrument_id == sa.bindparam("iid"),
        _l.remaining > 0,
    )
    .order_by(_l.opened_on, _l.id)
)
_POSITION = Prepared(
    sa.select(_p.quantity, _p.mark_e4, _p.marked_on).where(
        _p.portfolio_id == sa.bindparam("pid"),
        _p.account_id == sa.bindparam("aid"),
        _p.instrument_id == sa.bindparam("iid"),
    )
)
# Rows as lists or tuples in these orders.
FILL_COLUMNS = ["id", "portfolio_id", "account_id", "instrument_id", "action", "quantity", "price_e4", "commission_cents",
                "cash_cents", "trade_date", "week_start", "transfer_id", "audit_seq"]  # fmt: skip
FILL_TRANSFER = FILL_COLUMNS.index("transfer_id")
_FILL_INSERT = insert(fills, FILL_COLUMNS)
_LOT_INSERT = insert(
    lots,
    ["id", "portfolio_id", "account_id", "instrument_id", "open_fill_id", "side", "opened_on", "quantity",
     "open_cash_cents", "remaining", "remaining_cash_cents"],
)  # fmt: skip
_LOT_UPDATE = Prepared(
    lots.update()
    # account_id too: lots is partitioned by it on PostgreSQL, so this touches one partition.
    .where(_l.portfolio_id == sa.bindparam("pid"), _l.id == sa.bindparam("lid"), _l.account_id == sa.bindparam("aid"))
    .values(remaining=sa.bindparam("remaining"), remaining_cash_cents=sa.bindparam("rcash")),
    # The updates take their rows as tuples in the order SQLite binds them (Prepared.tuples).
    ["remaining", "rcash", "pid", "lid", "aid"],
)
_CLOSE_INSERT = insert(
    lot_closes,
    ["id", "portfolio_id", "account_id", "lot_id", "fill_id", "quantity", "closed_on", "open_cash_cents",
     "close_cash_cents", "gain_cents", "term", "realized"],
)  # fmt: skip
# New positions and instruments go in with ids reserved up front: the audit manifest then takes the
# rows from the statement's parameters instead of reading them back (store/rowlog.py).
_POS_INSERT = insert(
    positions, ["id", "portfolio_id", "account_id", "instrument_id", "quantity", "mark_e4", "marked_on"]
)
_INSTRUMENT_INSERT = insert(instruments)
_POS_UPDATE = Prepared(
    positions.update()
    .where(
        _p.portfolio_id == sa.bindparam("pid"),
        _p.account_id == sa.bindparam("aid"),
        _p.instrument_id == sa.bindparam("iid"),
    )
    .values(quantity=sa.bindparam("qty"), mark_e4=sa.bindparam("mark"), marked_on=sa.bindparam("on")),
    ["qty", "mark", "on", "pid", "aid", "iid"],
)
_ACCOUNT_FIGURES = Prepared(
    accounts.update()
    .where(accounts.c.portfolio_id == sa.bindparam("pid"), accounts.c.id == sa.bindparam("aid"))
    .values(
        cash_cents=sa.bindparam("cash"),
        positions_value_cents=sa.bindparam("pv"),
        collateral_cents=sa.bindparam("coll"),
    ),
    ["cash", "pv", "coll", "pid", "aid"],
)
_EXT_CASH = Prepared(
    accounts.update()
    .where(accounts.c.portfolio_id == sa.bindparam("pid"), accounts.c.id == sa.bindparam("aid"))
    .values(cash_cents=accounts.c.cash_cents + sa.bindparam("d", type_=sa.BigInteger)),
    ["d", "pid", "aid"],
)


# A booking of a known account starts with one read (`opening`): the account (by its id, or by its
# name as `repo.resolve_account` finds one), the counter-accounts a fact posts to and, on SQLite, the
# highest id of each table the booking inserts into, where it took a statement each (the name's
# lookup, ids, account, counter-accounts).
_ext = accounts.alias("ext")
_BOOKED_TABLES = (fills, lots, positions, lot_closes)


def _opening(dialect: str, by_name: bool) -> Prepared:
    return Prepared(
        sa.select(
            *ACCOUNT_COLUMNS,
            *(
                sa.select(_ext.c.id)
                .where(_ext.c.portfolio_id == sa.bindparam("pid"), _ext.c.name == name)
                .scalar_subquery()
                for name in COUNTER_ACCOUNTS
            ),
            *(pool_head(t, "sqlite", sa.null()) for t in _BOOKED_TABLES if dialect == "sqlite"),
        ).where(
            accounts.c.portfolio_id == sa.bindparam("pid"),
            accounts.c.name == sa.bindparam("ref") if by_name else accounts.c.id == sa.bindparam("ref"),
        )
    )


_OPENING = {(d, by_name): _opening(d, by_name) for d in ("sqlite", "postgresql") for by_name in (False, True)}


class Opening(NamedTuple):
    """What a booking's first read found: its first fill id and, on SQLite, the next ids of its other
    rows (`fill_ids`); the account (None: not in the portfolio) and the counter-accounts that exist."""

    first_fill: int
    ids: BookIds | None
    account: AccountRow | None
    counter_accounts: dict[str, int]


_new_opening = functools.partial(tuple.__new__, Opening)  # from a tuple in C, not the named tuple's Python __new__
_COUNTERS_AT = len(ACCOUNT_COLUMNS)  # the counter-accounts' ids in the opening's row, then the tables' tops


def opening(conn: sa.Connection, portfolio_id: int, n_fills: int, account: int | str) -> Opening:
    """`fill_ids` with the account (its id, or its name as stored) and the counter-accounts, in one
    statement when the account is in the portfolio."""
    row = _OPENING[conn.dialect.name, isinstance(account, str)].first(conn, pid=portfolio_id, ref=account)
    if row is None:
        return Opening(*fill_ids(conn, n_fills), None, {})
    n = _COUNTERS_AT
    found = row[n : n + 3]
    if None in found:  # a portfolio's first bookings: not every counter-account is made yet
        ext = {name: aid for name, aid in zip(COUNTER_ACCOUNTS, found, strict=True) if aid is not None}
    else:
        ext = dict(zip(COUNTER_ACCOUNTS, found, strict=True))
    if conn.dialect.name != "sqlite":
        return Opening(*fill_ids(conn, n_fills), account_row(row[:n]), ext)
    # Written out, each step a C call: a generator and a star-unpacking cost twice as much.
    top_fill, top_lot, top_position, top_close = row[n + 3 :]
    ids = BookIds(top_lot + 1, top_position + 1, top_close + 1)
    return _new_opening((top_fill + 1, ids, account_row(row[:n]), ext))


def day(value: date | str | None) -> date | None:
    """Prepared statements skip result processing: SQLite hands dates back as ISO text."""
    return date.fromisoformat(value) if isinstance(value, str) else value


# Instruments as read, by their stored row: an instrument is immutable, so the units of work that book
# one share the object made for its first (a frozen dataclass and its kind's enum lookup cost about
# what the read's own Python does). Emptied when full, so a long-running process keeps a bounded number.
_INSTRUMENTS: dict[tuple[Any, ...], Instrument] = {}
_INSTRUMENTS_MAX = 4096


def _instrument(row: Sequence[Any]) -> Instrument:
    stored = tuple(row[:8])
    found = _INSTRUMENTS.get(stored)
    if found is None:
        _id, symbol, kind, underlying, pc, strike, expiry, mult = stored
        found = Instrument(symbol, InstrumentKind(kind), underlying, pc, strike, day(expiry), mult)
        if len(_INSTRUMENTS) >= _INSTRUMENTS_MAX:
            _INSTRUMENTS.clear()
        _INSTRUMENTS[stored] = found
    return found


def instrument_by_id(conn: sa.Connection, portfolio_id: int, iid: int) -> Instrument:
    row = _INSTRUMENT_BY_ID.first(conn, pid=portfolio_id, iid=iid)
    assert row is not None
    return _instrument(row)


def instrument_by_symbol(conn: sa.Connection, portfolio_id: int, symbol: str) -> tuple[int, Instrument] | None:
    row = _INSTRUMENT_BY_SYMBOL.first(conn, pid=portfolio_id, symbol=symbol)
    return None if row is None else (int(row[0]), _instrument(row))


def insert_instrument(conn: sa.Connection, portfolio_id: int, spec: Instrument) -> int:
    iid = allocate_ids(conn, instruments, 1)
    _INSTRUMENT_INSERT.run(
        conn,
        id=iid,
        portfolio_id=portfolio_id,
        symbol=spec.symbol,
        kind=spec.kind.value,
        underlying=spec.underlying,
        put_call=spec.put_call,
        strike_e4=spec.strike_e4,
        expiry=spec.expiry,
        multiplier=spec.multiplier,
    )
    return iid


def open_lots(conn: sa.Connection, portfolio_id: int, account_id: int, instrument_id: int) -> list[BookLot]:
    """An account's open lots of one instrument, oldest first (FIFO order)."""
    return [
        BookLot(lid, day(on), rem, rcash, account_id, instrument_id, fid, side, qty, ocash, False)  # type: ignore[arg-type]
        for lid, on, rem, rcash, fid, side, qty, ocash in _OPEN_LOTS.rows(
            conn, pid=portfolio_id, aid=account_id, iid=instrument_id
        )
    ]


def position(conn: sa.Connection, portfolio_id: int, account_id: int, instrument_id: int) -> Position | None:
    """One stored position, closed ones too (they keep their valuation price)."""
    row = _POSITION.first(conn, pid=portfolio_id, aid=account_id, iid=instrument_id)
    return None if row is None else Position(row[0], row[1], day(row[2]), False)  # type: ignore[arg-type]


# What an account holds, with each instrument, and the instrument a fact books (by its symbol) with
# the account's position and open lots of it: one statement where a fact took one for the held
# positions, one per held instrument, one for the fact's instrument, one for its lots and one for a
# closed position. Held positions only: a closed one keeps its row (quantity 0) for good, and an
# account that trades every week gathers hundreds; `position` reads a closed one back when a fact
# touches it again, and this read brings the one of the fact's instrument.
_LOT_COLS = (_l.id, _l.opened_on, _l.remaining, _l.remaining_cash_cents, _l.open_fill_id, _l.side, _l.quantity,
             _l.open_cash_cents)  # fmt: skip
_HOLDINGS = Prepared(
    sa.union_all(
        sa.select(
            *_INSTRUMENT_COLS, _p.quantity, _p.mark_e4, _p.marked_on, *(sa.cast(sa.null(), c.type) for c in _LOT_COLS)
        )
        .select_from(positions.join(instruments, (_i.portfolio_id == _p.portfolio_id) & (_i.id == _p.instrument_id)))
        .where(
            _p.portfolio_id == sa.bindparam("pid"),
            _p.account_id == sa.bindparam("aid"),
            _p.quantity != 0,
            _i.symbol != sa.bindparam("symbol"),
        ),
        sa.select(*_INSTRUMENT_COLS, _p.quantity, _p.mark_e4, _p.marked_on, *_LOT_COLS)
        .select_from(
            instruments.outerjoin(
                positions,
                (_p.portfolio_id == _i.portfolio_id)
                & (_p.account_id == sa.bindparam("aid"))
                & (_p.instrument_id == _i.id),
            ).outerjoin(
                lots,
                (_l.portfolio_id == _i.portfolio_id)
                & (_l.account_id == sa.bindparam("aid"))
                & (_l.instrument_id == _i.id)
                & (_l.remaining > 0),
            )
        )
        .where(_i.portfolio_id == sa.bindparam("pid"), _i.symbol == sa.bindparam("symbol")),
    )
)


class Touched(NamedTuple):
    """The instrument a fact books, as `holdings` found it: its stored position in the account (None:
    none) and the account's open lots of it, oldest first."""

    id: int
    instrument: Instrument
    position: Position | None
    lots: list[BookLot]


class Holdings(NamedTuple):
    positions: dict[int, Position]  # held (quantity not zero), by instrument id
    instruments: dict[int, Instrument]  # of those positions
    touched: Touched | None  # the instrument of the symbol asked for; None: not recorded


def holdings(conn: sa.Connection, portfolio_id: int, account_id: int, symbol: str | None) -> Holdings:
    """The positions an account holds (quantity not zero) with their instruments, and, for `symbol`,
    its instrument with the account's position (held or closed) and open lots of it."""
    held: dict[int, Position] = {}
    instruments_held: dict[int, Instrument] = {}
    touched: Touched | None = None
    for r in _HOLDINGS.rows(conn, pid=portfolio_id, aid=account_id, symbol=symbol or ""):
        iid = r[0]
        if r[1] != symbol:
            held[iid] = Position(r[8], r[9], day(r[10]), False)  # type: ignore[arg-type]
            instruments_held[iid] = _instrument(r)
            continue
        if touched is None:
            pos = None if r[8] is None else Position(r[8], r[9], day(r[10]), False)  # type: ignore[arg-type]
            touched = Touched(iid, _instrument(r), pos, [])
        if r[11] is not None:
            lid, on, rem, rcash, fid, side, qty, ocash = r[11:]
            touched.lots.append(BookLot(lid, day(on), rem, rcash, account_id, iid, fid, side, qty, ocash, False))  # type: ignore[arg-type]
    if touched is not None:
        touched.lots.sort(key=_fifo_order)  # as `open_lots` reads them
    return Holdings(held, instruments_held, touched)


def _fifo_order(lot: BookLot) -> tuple[date, int]:
    return lot.opened_on, lot.id


def held_instruments(conn: sa.Connection, portfolio_id: int, account_id: int) -> list[int]:
    """The instruments an account holds a non-zero position in, by id."""
    p = positions.c
    held = sa.and_(p.portfolio_id == portfolio_id, p.account_id == account_id, p.quantity != 0)
    q = sa.select(p.instrument_id).where(held).order_by(p.instrument_id)
    return [int(iid) for (iid,) in conn.execute(q)]


def fill_row(
    fill_id: int, portfolio_id: int, account_id: int, instrument_id: int | None, action: str, quantity: int,
    price_e4: int, commission_cents: int, cash_cents: int, on: date, audit_seq: int,
) -> list[Any]:  # fmt: skip
    """A fill as `insert_fills` takes it, in FILL_COLUMNS order; its transfer (FILL_TRANSFER) is set
    once the journal entry is written."""
    return [fill_id, portfolio_id, account_id, instrument_id, action, quantity, price_e4, commission_cents, cash_cents,
            on, week_start(on), None, audit_seq]  # fmt: skip


class BookIds:
    """SQLite: the next id of each table a booking inserts into besides its fills, read with its fill
    ids (`ids.allocate_blocks`, one statement) and counted on as it writes (the writer lock makes that safe; only the booking writes
    those rows meanwhile)."""

    __slots__ = ("next",)

    def __init__(self, lots: int, positions: int, closes: int) -> None:
        self.next = {"lots": lots, "positions": positions, "lot_closes": closes}  # each table's next id

    def take(self, table: sa.Table, n: int) -> range:
        first = self.next[table.name]
        self.next[table.name] += n
        return range(first, first + n)


def fill_ids(conn: sa.Connection, n: int) -> tuple[int, BookIds | None]:
    """The first of n consecutive fill ids, and on SQLite the ids of the booking's other new rows, read
    in the same statement. PostgreSQL draws each block from its sequence as the booking writes it (None)."""
    if conn.dialect.name != "sqlite":
        return allocate_ids(conn, fills, n), None
    first_fill, *others = allocate_blocks(conn, (fills, n), (lots, 0), (positions, 0), (lot_closes, 0))
    return first_fill, BookIds(*others)


def insert_fills(conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Fills as rows in FILL_COLUMNS order (`fill_row`)."""
    _FILL_INSERT.tuples(conn, rows)


def write_booking(conn: sa.Connection, portfolio_id: int, booking: Booking, ids: BookIds | None = None) -> None:
    """Write back what a booking changed since the last write-back (new lots get their ids here,
    from `ids` when `fill_ids` gave them), and mark it written."""
    _write_lots(conn, portfolio_id, booking.new_lots, booking.closes, ids)
    _write_positions(conn, portfolio_id, booking.positions, ids)
    _write_figures(conn, portfolio_id, booking.accounts.values(), booking.ext_delta)
    for lot in booking.new_lots:
        lot.new = False
    for by_iid in booking.positions.values():
        for p in by_iid.values():
            p.new = p.dirty = False
    booking.new_lots, booking.closes, booking.ext_delta = [], [], {}


def _new_ids(conn: sa.Connection, table: sa.Table, n: int, ids: BookIds | None) -> range:
    if ids is not None:
        return ids.take(table, n)
    first = allocate_ids(conn, table, n)
    return range(first, first + n)


def _write_lots(conn: sa.Connection, pid: int, new: list[BookLot], closes: list[Close], ids: BookIds | None) -> None:
    if new:
        for lot, lid in zip(new, _new_ids(conn, lots, len(new), ids), strict=True):
            lot.id = lid
        _LOT_INSERT.tuples(
            conn,
            [
                (lot.id, pid, lot.account_id, lot.instrument_id, lot.fill_id, lot.side, lot.opened_on, lot.quantity,
                 lot.open_cash, lot.remaining, lot.remaining_cash)
                for lot in new
            ],
        )  # fmt: skip
    _write_closes(conn, pid, closes, ids)


def _write_closes(conn: sa.Connection, pid: int, closes: list[Close], book_ids: BookIds | None) -> None:
    """The remaining figures of the stored lots a booking took from, and the tax ledger's closes."""
    closed = cast(list[BookLot], [c.take.lot for c in closes])  # Close.lot, without a property call per use
    touched = {id(lot): lot for lot in closed if not lot.new}
    _LOT_UPDATE.tuples(
        conn, [(lot.remaining, lot.remaining_cash, pid, lot.id, lot.account_id) for lot in touched.values()]
    )
    # Ids chosen here, so the audit manifest records the closes from these parameters (store/rowlog.py).
    if not closes:
        ids: Sequence[int] = ()
    elif book_ids is not None:
        ids = book_ids.take(lot_closes, len(closes))
    else:
        ids = draw_ids(conn, lot_closes, len(closes))
    _CLOSE_INSERT.tuples(
        conn,
        [
            (close_id, pid, lot.account_id, lot.id, c.fill_id, c.take.quantity, c.on, c.take.open_cash,
             c.take.close_cash, c.take.open_cash + c.take.close_cash, c.term, c.realized)
            for c, lot, close_id in zip(closes, closed, ids, strict=True)
        ],
    )  # fmt: skip


def _write_positions(
    conn: sa.Connection, pid: int, by_account: Mapping[int, Mapping[int, Position]], ids: BookIds | None
) -> None:
    pos_new: list[tuple[int, int, Position]] = []
    pos_upd = []
    for aid, by_iid in by_account.items():
        for iid, p in by_iid.items():
            if p.new:
                pos_new.append((aid, iid, p))
            elif p.dirty:
                pos_upd.append((p.quantity, p.mark_e4, p.marked_on, pid, aid, iid))
    if pos_new:
        _POS_INSERT.tuples(
            conn,
            [
                (posid, pid, aid, iid, p.quantity, p.mark_e4, p.marked_on)
                for posid, (aid, iid, p) in zip(_new_ids(conn, positions, len(pos_new), ids), pos_new, strict=True)
            ],
        )
    _POS_UPDATE.tuples(conn, pos_upd)


def _write_figures(conn: sa.Connection, pid: int, holders: Iterable[Holder], ext_delta: Mapping[int, int]) -> None:
    """The cached cash, positions value and collateral of the accounts booked into, and the cash of
    the counter-accounts as a delta (many units of work post to them at once)."""
    _ACCOUNT_FIGURES.tuples(conn, [(a.cash, a.positions_value, a.collateral, pid, a.id) for a in holders])
    add_cash(conn, pid, {a: d for a, d in ext_delta.items() if d})


def add_cash(conn: sa.Connection, portfolio_id: int, deltas: Mapping[int, int]) -> None:
    """Move accounts' cached cash by a delta each (counter-accounts many units of work post to)."""
    _EXT_CASH.tuples(conn, [(d, portfolio_id, a) for a, d in deltas.items()])
