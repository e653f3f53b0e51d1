"""Recording broker facts: fills, expiries, assignments, dividends and fees (ALLUSE_RULES §6).

Each fact is one request of a unit of work with its own idempotency key; a batch (a statement import)
is one unit of work applied fact by fact in order, exactly as if the facts had come one by one. A
fact updates, in the same transaction: the journal (balanced legs against ext:market / ext:fees /
ext:dividends), the FIFO lots and the tax ledger (lot_closes), the account's positions, and the
cached cash, positions value and short-put collateral of the account. Facts are never refused by the
buffer rule: an account left below its buffer gets a BUFFER_BREACH alert.

What a fact does is decided by the pure `domain.booking`; `Book` loads what it needs and writes back
what it changed (load → decide → apply, in the caller's one unit of work).
"""

from __future__ import annotations

from datetime import date
from json.encoder import encode_basestring
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy.engine import Engine

from alluse.domain.audit import canonical_json, json_strings
from alluse.domain.booking import (
    BOOKS_LOTS,
    TRADES,
    Booked,
    Booking,
    Fill,
    FillAction,
    check_holds_positions,
    trade_date,
    week_start,
)
from alluse.domain.errors import InvalidInput
from alluse.domain.instruments import Instrument, parse_symbol
from alluse.domain.ledger import COUNTER_ACCOUNTS
from alluse.domain.money import Cents
from alluse.services.alerts import alert_event, check_buffer
from alluse.services.earmarks import FillFacts, OpenEarmarks, draw_down_for_fill, purpose_of_fill
from alluse.store import book as store
from alluse.store.repo import (
    AccountRow,
    JournalEntry,
    external_account,
    external_ids,
    insert_journal,
    load_accounts,
    new_journal_entry,
    resolve_account,
)
from alluse.store.scope import is_id
from alluse.store.uow import BULK_REQUESTS, Request, Tx, collector_paused, write

__all__ = ["FLUSH_EVERY", "TRADES", "Book", "Booked", "Fill", "FillAction", "FillResult", "record_fill", "record_fills"]
__all__ += ["move_lots_in_kind", "week_start"]

# A long import writes its rows in slices inside its one transaction: a bounded working set is
# faster than building every row of 100,000 facts in memory first.
FLUSH_EVERY = 5_000


class FillResult(TypedDict):
    """One recorded fact, as its audit entry stores it (and an idempotent replay returns it)."""

    fill_id: int
    account: str
    action: str
    symbol: str | None
    quantity: int
    cash_cents: Cents
    realized_cents: Cents
    trade_date: str
    buffer_breach: bool
    earmark_drawn_cents: NotRequired[Cents]
    replayed: NotRequired[bool]  # an idempotent replay of a recorded fact


class MovedInKind(TypedDict):
    instruments: int
    lots: int


def fill_result(b: Booked, buffer_breach: bool) -> FillResult:
    return {
        "fill_id": b.fill_id,
        "account": b.account,
        "action": str(b.action),
        "symbol": b.symbol,
        "quantity": b.quantity,
        "cash_cents": Cents(b.cash_cents),
        "realized_cents": Cents(b.realized_cents),
        "trade_date": b.trade_date.isoformat(),
        "buffer_breach": buffer_breach,
    }


# A FillResult as canonical JSON (domain.audit.canonical_json: keys in order, texts as its encoder
# spells them), for the results of a batch (`result_texts`); the drawn earmark, when there is one,
# goes where its key sorts.
_RESULT = ('{"account":%s,"action":%s,"buffer_breach":%s,"cash_cents":%d,%s"fill_id":%d,"quantity":%d,'
           '"realized_cents":%d,"symbol":%s,"trade_date":%s}')  # fmt: skip
_FLAG = {True: "true", False: "false"}
_RESULT_KEYS = len(FillResult.__annotations__) - 1  # every key but `replayed`


def result_texts(results: list[FillResult]) -> list[str]:
    """`canonical_json` of each result, spelled with the shape known (as `cash.moved_texts`): well under
    the generic encoder's work on a result (tests/unit/test_fill_texts.py compares the two); a result
    holding a value of a type it does not declare is left to the generic encoder."""
    text = json_strings()
    out = []
    for r in results:
        drawn = r.get("earmark_drawn_cents")
        symbol = r["symbol"]
        if (
            len(r) != _RESULT_KEYS - (drawn is None)
            or type(r["quantity"]) is not int
            or type(r["buffer_breach"]) is not bool
            or not (drawn is None or type(drawn) is int)
        ):
            out.append(canonical_json(r))
            continue
        out.append(
            _RESULT
            % (
                text(r["account"]),
                text(r["action"]),
                _FLAG[r["buffer_breach"]],
                r["cash_cents"],
                "" if drawn is None else f'"earmark_drawn_cents":{drawn},',
                r["fill_id"],
                r["quantity"],
                r["realized_cents"],
                "null" if symbol is None else text(symbol),
                text(r["trade_date"]),
            )
        )
    return out


# A FillPayload as canonical JSON (domain.audit.canonical_json: keys in order, texts as its encoder
# spells them), for the input digests of a batch (`payload_texts`).
_PAYLOAD = ('{"account":%s,"action":%s,"amount_cents":%d,"commission_cents":%d,"multiplier":%d,"price":%s,'
            '"quantity":%d,"symbol":%s,"trade_date":%s}')  # fmt: skip
_REFS = frozenset({int, str})


def payload_texts(facts: list[Fill]) -> list[str | None]:
    """`canonical_json` of each fact's payload, spelled with the shape known (as `cash.payload_texts`):
    less than half the generic encoder's work on a payload (tests/unit/test_fill_texts.py compares the
    two). None for a fact holding a value of a type the payload does not declare (the generic encoder
    spells it)."""
    # One fact's texts are spelled as they come: keeping them for the next fact would cost more.
    text = json_strings() if len(facts) > 1 else encode_basestring
    out: list[str | None] = []
    for f in facts:
        account, price, symbol, on = f.account, f.price, f.symbol, f.trade_date
        if (
            type(account) not in _REFS
            or type(price) is not str
            or not (symbol is None or type(symbol) is str)
            or type(f.quantity) is not int
            or type(f.amount_cents) is not int
            or type(f.commission_cents) is not int
            or type(f.multiplier) is not int
        ):
            out.append(None)
            continue
        out.append(
            _PAYLOAD
            % (
                text(account) if type(account) is str else account,
                text(str(f.action)),
                f.amount_cents,
                f.commission_cents,
                f.multiplier,
                text(price),
                f.quantity,
                "null" if symbol is None else text(symbol),
                text(on.isoformat()) if on else "null",
            )
        )
    return out


def draw_earmark(tx: Tx, book: Book, b: Booked, multiplier: int, request_index: int) -> int:
    """A purchase executes the reinvestment earmark planned for it (planned versus executed)."""
    acc = book.accounts[b.account_id]
    if not acc.earmarked:
        # Nothing earmarked in the account when the unit of work loaded it, and fills only draw:
        # no purpose has anything open (each one's open amount is at least 0, and they sum to this).
        return 0
    action = str(b.action)
    purpose = purpose_of_fill(acc.kind, action, b.symbol, multiplier, b.trade_date)
    if purpose is None:
        return 0
    fact: FillFacts = {
        "fill_id": b.fill_id,
        "action": action,
        "symbol": b.symbol,
        "quantity": b.quantity,
        "cash_cents": b.cash_cents,
        "multiplier": multiplier,
    }
    return draw_down_for_fill(tx, b.account_id, purpose, fact, request_index, book.earmarks)


def record_fills(
    engine: Engine, actor: str, portfolio: str | int | None, facts: list[tuple[str, Fill]]
) -> list[FillResult]:
    """Record broker facts in one unit of work, in order; one result per fact."""
    by_key = dict(facts)

    def apply(tx: Tx, fresh: list[Request]) -> list[FillResult]:
        # One fill row per fact: reserve their ids in one go (a sequence block on PostgreSQL).
        book = Book.opened(tx, len(fresh), by_key[fresh[0].key].account)
        booked = []
        for i, r in enumerate(fresh):
            booked.append(book.record(by_key[r.key], tx.seq(i)))
            if (i + 1) % FLUSH_EVERY == 0:
                book.flush(final=False)
        book.flush()
        out: list[FillResult] = []
        for i, (b, req) in enumerate(zip(booked, fresh, strict=True)):
            result = fill_result(b, book.breached.get(b.account_id, False))
            if drawn := draw_earmark(tx, book, b, by_key[req.key].multiplier, i):
                result["earmark_drawn_cents"] = Cents(drawn)
            if b.action is FillAction.ASSIGN:
                alert_event(
                    tx, i, "assignment", b.account_id, f"{b.account}: {b.symbol} assigned, {b.quantity} contract(s)"
                )
            out.append(result)
        if len(out) >= BULK_REQUESTS:
            tx.result_texts = result_texts(out)
        return out

    with collector_paused(len(facts)):
        # One cast for the batch (one per request built `dict[str, Any]` and called `cast` each time).
        fills = [f for _k, f in facts]
        payloads = cast(list[dict[str, Any]], [f.payload() for f in fills])
        requests = list(map(Request, [k for k, _f in facts], payloads, payload_texts(fills)))
        return cast(list[FillResult], write(engine, portfolio, actor, "trade.fill", requests, apply))


def record_fill(engine: Engine, actor: str, portfolio: str | int | None, key: str, fill: Fill) -> FillResult:
    return record_fills(engine, actor, portfolio, [(key, fill)])[0]


def move_lots_in_kind(tx: Tx, source_id: int, target_id: int, on: date, seq: int) -> MovedInKind:
    """Move every open lot of one account into another, in kind, inside the caller's unit of work
    (the lifecycle's merge, ALLUSE_RULES §5.3): see `Booking.move_in_kind`. The moves are linked by
    a MOVE_OUT and a MOVE_IN fill per instrument. Cash is not touched: the caller moves it through
    the journal."""
    held = store.held_instruments(tx.conn, tx.portfolio_id, source_id)
    if not held:
        return {"instruments": 0, "lots": 0}
    book = Book.opened(tx, 2 * len(held))
    src, dst = book.account(source_id), book.account(target_id)
    for iid in held:
        book.instrument_by_id(iid)
        book.open_lots(src.id, iid)
        book.open_lots(dst.id, iid)
        book.position(dst.id, iid)
    moves = book.booking.move_in_kind(src, dst, held, on, [book.new_fill_id() for _ in range(2 * len(held))])
    for m in moves:
        for fid, aid, action in ((m.out_fill_id, src.id, "MOVE_OUT"), (m.in_fill_id, dst.id, "MOVE_IN")):
            book.fill_rows.append(
                store.fill_row(fid, tx.portfolio_id, aid, m.instrument_id, action, m.quantity, m.mark_e4, 0, 0, on, seq)
            )
    book.flush()
    return {"instruments": len(held), "lots": sum(m.lots for m in moves)}


class _CounterAccounts(dict[str, int]):
    """The external counter-accounts by name, as a booking asks for them: those known are a plain dict
    lookup (no Python call per fact); another is looked up on first use, all of them in one read
    (a trade posts to two: market and fees), or made. It knows the unit of work, not the booking:
    no reference cycle, so a unit of work's booking is freed as soon as it ends, not by the
    collector."""

    __slots__ = ("tx", "read")

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.read = False

    def __missing__(self, name: str) -> int:
        conn, pid = self.tx.conn, self.tx.portfolio_id
        if not self.read:
            self.update(external_ids(conn, pid, COUNTER_ACCOUNTS))
            self.read = True
            if name in self:
                return self[name]
        found = self[name] = external_account(conn, pid, name, self.tx.now)
        return found


class Book:
    """A unit of work's booking: loads what each fact needs, asks `domain.booking` what the fact does,
    and `flush` writes it back in a few executemany. Made once per unit of work, by `opened`: its
    state is set in a plain `__init__` (a dataclass's, with a default factory per field, cost as
    much as a single fill's booking read spends in Python)."""

    __slots__ = ("tx", "booking", "accounts", "refs", "fill_rows", "entries", "entry_fill", "breached", "earmarks",
                 "_parsed", "counter_accounts", "_next_fill", "_ids", "_account_read", "_instrument_read",
                 "_no_position", "_touches")  # fmt: skip

    def __init__(self, tx: Tx, next_fill: int, ids: store.BookIds | None, account_read: AccountRow | None) -> None:
        self.tx = tx
        self.booking = Booking()
        self.accounts: dict[int, AccountRow] = {}
        self.refs: dict[str | int, int] = {}
        self.fill_rows: list[list[Any]] = []  # store.fill_row
        self.entries: list[JournalEntry] = []
        self.entry_fill: list[int] = []
        self.breached: dict[int, bool] = {}
        # Open earmarks as read and drawn by this unit of work's fills (nothing else here writes any).
        self.earmarks: OpenEarmarks = {}
        self._parsed: dict[tuple[str, int], Instrument] = {}
        self.counter_accounts = _CounterAccounts(tx)  # one for every fact of the unit of work
        self._next_fill = next_fill
        self._ids = ids
        # Read ahead with what was read anyway (see `opened`, `account`): an account, and by symbol the
        # instruments not held (None: not recorded), taken by their first use.
        self._account_read = account_read
        self._instrument_read: dict[str, tuple[int, Instrument] | None] = {}
        # (account, instrument) read with no stored position: `position` need not ask again.
        self._no_position: set[tuple[int, int]] = set()
        # What `_loaded` loaded for facts of a kind (see `record`).
        self._touches: dict[tuple[Any, ...], tuple[AccountRow, Instrument | None, int | None, int | None]] = {}

    @classmethod
    def opened(cls, tx: Tx, n_fills: int, account: str | int | None = None) -> Book:
        """A booking of up to `n_fills` fills, their ids reserved (and what else it writes, see
        `store.fill_ids`). `account`: the first fact's, read with the ids (by its id or its name)."""
        # A name is found as `resolve_account` finds it. A text of digits is an id there, found among
        # the sleeves only (a counter-account's is "not found"), which the opening's read by id is
        # not: such a reference takes the reads one by one.
        ref = account.strip().upper() if isinstance(account, str) else account
        if account is None or isinstance(ref, str) and (not ref or is_id(ref)):
            first, ids = store.fill_ids(tx.conn, n_fills)
            return cls(tx, first - 1, ids, None)
        assert ref is not None
        o = store.opening(tx.conn, tx.portfolio_id, n_fills, ref)
        book = cls(tx, o.first_fill - 1, o.ids, o.account)
        if o.account is not None:
            book.refs[account] = o.account.id
        # The counter-accounts too: none is made before the first fact posts, and only this booking
        # makes any meanwhile.
        book.counter_accounts.update(o.counter_accounts)
        book.counter_accounts.read = o.account is not None
        return book

    # -- loading
    def account(self, ref: str | int, symbol: str | None = None) -> AccountRow:
        """The account `ref` with what it holds; `symbol`: an instrument whose position and open lots
        the fact about to be booked takes (read with the holdings, see `store.holdings`)."""
        aid = self.refs.get(ref)
        if aid is None:
            aid = self.refs[ref] = (
                ref if isinstance(ref, int) else resolve_account(self.tx.conn, self.tx.portfolio_id, ref)
            )
        acc = self.accounts.get(aid)
        if acc is None:
            read, self._account_read = self._account_read, None
            if read is None or read.id != aid:
                read = load_accounts(self.tx.conn, self.tx.portfolio_id, [aid])[aid]
            acc = self.accounts[aid] = read
            check_holds_positions(acc)
            self.booking.accounts[aid] = acc
            h = store.holdings(self.tx.conn, self.tx.portfolio_id, aid, symbol)
            self.booking.positions[aid] = h.positions
            for iid, ins in h.instruments.items():
                if iid not in self.booking.inst:
                    self.booking.add_instrument(iid, ins)
            if symbol is not None:
                self._touched(aid, symbol, h.touched)
        return acc

    def _touched(self, aid: int, symbol: str, t: store.Touched | None) -> None:
        """Keep what `holdings` read of the instrument a fact books, as `instrument`, `open_lots` and
        `position` would read it."""
        if t is None:
            self._instrument_read[symbol] = None
            return
        if t.id not in self.booking.inst:
            if t.position is not None and t.position.quantity:
                self.booking.add_instrument(t.id, t.instrument)  # held: known like every held one
            else:
                self._instrument_read[symbol] = (t.id, t.instrument)
        if t.position is None:
            self._no_position.add((aid, t.id))
        else:
            self.booking.positions[aid][t.id] = t.position
        self.booking.lots.setdefault((aid, t.id), t.lots)

    def instrument_by_id(self, iid: int) -> Instrument:
        ins = self.booking.inst.get(iid)
        if ins is None:
            ins = store.instrument_by_id(self.tx.conn, self.tx.portfolio_id, iid)
            self.booking.add_instrument(iid, ins)
        return ins

    def instrument(self, spec: Instrument) -> int:
        """The id of `spec`'s instrument, recorded on first use."""
        iid = self.booking.inst_by_symbol.get(spec.symbol)
        if iid is not None:
            return iid
        conn, pid = self.tx.conn, self.tx.portfolio_id
        if spec.symbol in self._instrument_read:
            found = self._instrument_read.pop(spec.symbol)
        else:
            found = store.instrument_by_symbol(conn, pid, spec.symbol)
        if found is None:
            iid, ins = store.insert_instrument(conn, pid, spec), spec
        else:
            iid, ins = found
            if ins.multiplier != spec.multiplier and spec.is_option:
                raise InvalidInput(f"{spec.symbol} is recorded with multiplier {ins.multiplier}, not {spec.multiplier}")
        self.booking.add_instrument(iid, ins)
        return iid

    def position(self, aid: int, iid: int) -> None:
        """A closed position is not loaded with the held ones: read it back when a fact touches it."""
        held = self.booking.positions[aid]
        if iid in held or (aid, iid) in self._no_position:
            return
        if (pos := store.position(self.tx.conn, self.tx.portfolio_id, aid, iid)) is not None:
            held[iid] = pos

    def open_lots(self, aid: int, iid: int) -> None:
        key = (aid, iid)
        if key not in self.booking.lots:
            self.booking.lots[key] = store.open_lots(self.tx.conn, self.tx.portfolio_id, aid, iid)

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

    def _lots_symbol(self, f: Fill) -> str | None:
        """The symbol whose position and lots `f` books, if it parses (if not, `record` says so once
        the account is found, as before)."""
        if f.symbol is None or f.action not in BOOKS_LOTS:
            return None
        try:
            return self.parse(f.symbol, f.multiplier).symbol
        except InvalidInput:
            return None

    def _loaded(self, f: Fill) -> tuple[AccountRow, Instrument | None, int | None, int | None]:
        """Load what `f` touches: its account, its instrument's spec and id, and for an assigned
        option the underlying shares' id."""
        acc = self.account(f.account, self._lots_symbol(f))
        spec = self.parse(f.symbol, f.multiplier) if f.symbol else None
        iid = stock_iid = None
        if spec is not None:
            iid = self.instrument(spec)
            if f.action in BOOKS_LOTS:
                self.open_lots(acc.id, iid)
                self.position(acc.id, iid)
                ins = self.booking.inst[iid]
                if f.action is FillAction.ASSIGN and ins.is_option:
                    stock_iid = self.instrument(self.parse(ins.underlying))
                    self.open_lots(acc.id, stock_iid)
                    self.position(acc.id, stock_iid)
        return acc, spec, iid, stock_iid

    def record(self, f: Fill, seq: int) -> Booked:
        # Load what the fact touches (once per account, symbol and kind of fact: what was loaded stays
        # loaded, and the booking keeps it up to date) ...
        key = (f.account, f.symbol, f.multiplier, f.action in BOOKS_LOTS, f.action is FillAction.ASSIGN)
        loaded = self._touches.get(key)
        if loaded is None:
            loaded = self._touches[key] = self._loaded(f)
        acc, spec, iid, stock_iid = loaded
        on = trade_date(f, spec)
        # ... decide (a counter-account is looked up, or created, when the booking first posts to it) ...
        b = self.booking.book(f, acc, iid, on, self.new_fill_id(), self.counter_accounts, stock_iid)
        # ... and keep what to write back.
        if b.legs:
            self.entries.append(new_journal_entry((b.kind, b.legs, seq, b.memo, None)))
            self.entry_fill.append(len(self.fill_rows))
        self.fill_rows.append(
            store.fill_row(b.fill_id, self.tx.portfolio_id, b.account_id, b.instrument_id, str(b.action), b.quantity,
                           b.price_e4, b.commission_cents, b.cash_cents, on, seq)
        )  # fmt: skip
        return b

    # -- writing back
    def flush(self, final: bool = True) -> None:
        """Write what was recorded since the last flush. Only the final flush judges the buffer: an
        import is one fact for the alerts, not a series of transient breaches."""
        conn, pid = self.tx.conn, self.tx.portfolio_id
        tids = insert_journal(conn, pid, self.tx.now, self.entries) if self.entries else []
        for idx, tid in zip(self.entry_fill, tids, strict=True):
            self.fill_rows[idx][store.FILL_TRANSFER] = tid
        store.insert_fills(conn, self.fill_rows)
        store.write_booking(conn, pid, self.booking, self._ids)
        self.entries, self.entry_fill, self.fill_rows = [], [], []
        if final:
            for acc in self.accounts.values():
                self.breached[acc.id] = check_buffer(self.tx, acc, "a broker fact")
