"""Broker statements: import them exactly once, and reconcile alluse against them.

An import is one unit of work (all rows or none). Each broker row is one request keyed by the
broker's own id (`ibkr:<account>:trade:<tradeID>`, `…:cash:<transactionID>`), so re-importing a file
or an overlapping statement replays the rows already booked and books only the new ones; the
`broker_rows` table holds the same ids under a unique constraint. Trades, expiries, assignments,
dividends and fees are booked by `domain.booking` exactly as typed fills are; deposits,
withdrawals, interest and withholding tax are journal entries against ext:bank, ext:interest and
ext:tax; end-of-period marks go through `services.marks.apply_marks`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.flex_service import FlexWebService
from alluse.brokers.ibkr import BROKER, AccountStatement, Fact, FlexFile, read_flex
from alluse.brokers.refs import parse_brokerage_ref
from alluse.config import Settings
from alluse.domain.errors import InvalidInput
from alluse.domain.ledger import BANK, INTEREST, TAX, Leg, TransferKind
from alluse.domain.lots import Side
from alluse.domain.money import Cents, format_usd
from alluse.security.keyring import Keyring
from alluse.services.alerts import record_reconciliation
from alluse.services.brokers import read_credentials
from alluse.services.marks import MarksApplied, apply_marks
from alluse.services.trades import FLUSH_EVERY, Book, Booked, Fill, FillAction, draw_earmark
from alluse.store import book as book_store
from alluse.store import statements as statement_store
from alluse.store.asof import AccountAsOf, account_as_of
from alluse.store.repo import JournalEntry, apply_cash, external_account, insert_journal, load_accounts
from alluse.store.statements import BrokerRow
from alluse.store.uow import Request, Tx, write

# Cash flows booked as journal entries: (transfer kind, external counter-account, is capital).
_CASH_FLOWS = {
    "DEPOSIT": (TransferKind.DEPOSIT, BANK),
    "WITHDRAWAL": (TransferKind.WITHDRAWAL, BANK),
    "INTEREST": (TransferKind.INTEREST, INTEREST),
    "WITHHOLDING": (TransferKind.TAX_PAYMENT, TAX),
}


class FactImported(TypedDict):
    """One imported broker fact, as its audit entry stores it."""

    account: str
    action: str
    cash_cents: Cents
    realized_cents: NotRequired[Cents]
    earmark_drawn_cents: NotRequired[Cents]


class AccountImported(TypedDict):
    brokerage_account: str
    account: str
    period: str
    added: int
    already_present: int
    unsupported: dict[str, int]
    option_eae_rows: int


class Difference(TypedDict, total=False):
    """One mismatch between a statement and the books: cash, a quantity or a cost basis."""

    what: str
    symbol: str
    note: str
    broker_cents: Cents | None
    alluse_cents: Cents
    broker_quantity: int
    alluse_quantity: int


class AccountReconciled(TypedDict):
    brokerage_account: str
    account: str
    as_of: str
    cash_cents: Cents
    positions: int
    differences: list[Difference]
    not_compared: dict[str, int]


class Reconciliation(TypedDict):
    accounts: list[AccountReconciled]
    differences: int


class StatementImported(TypedDict):
    accounts: list[AccountImported]
    marks: int
    not_read: dict[str, int]
    ignored_attributes: dict[str, int]
    reconciliation: Reconciliation


@dataclass
class AccountImport:
    brokerage_account: str
    account: str
    period: str
    added: int = 0
    already_present: int = 0
    unsupported: dict[str, int] = field(default_factory=dict)
    option_eae_rows: int = 0

    def to_dict(self) -> AccountImported:
        return {
            "brokerage_account": self.brokerage_account,
            "account": self.account,
            "period": self.period,
            "added": self.added,
            "already_present": self.already_present,
            "unsupported": dict(sorted(self.unsupported.items())),
            "option_eae_rows": self.option_eae_rows,
        }


def fact_key(st: AccountStatement, fact: Fact) -> str:
    return f"ibkr:{st.account_id}:{fact.key}"


def mapped_accounts(conn: sa.Connection, portfolio_id: int, flex: FlexFile) -> dict[str, tuple[int, str]]:
    """IBKR account id → (system account id, name); an unmapped id anywhere is an error naming all."""
    numbers = [s.account_id for s in flex.statements]
    found = statement_store.mapped_numbers(conn, portfolio_id, BROKER, numbers)
    missing = [n for n in numbers if n not in found]
    if missing:
        raise InvalidInput(
            "unmapped IBKR accounts: "
            + ", ".join(f"{BROKER}:{n}" for n in missing)
            + " (open a group with -b IBKR:… or map them first; nothing was imported)"
        )
    return found


def import_statement(engine: Engine, actor: str, portfolio: str | int | None, data: bytes) -> StatementImported:
    """Import a Flex XML statement; returns the per-account report and the reconciliation."""
    return import_flex(engine, actor, portfolio, read_flex(data))


def import_flex(engine: Engine, actor: str, portfolio: str | int | None, flex: FlexFile) -> StatementImported:
    from alluse.store.scope import resolve_portfolio

    with engine.connect() as conn:
        mapping = mapped_accounts(conn, resolve_portfolio(conn, portfolio), flex)
    requests: list[Request] = []
    facts: dict[str, tuple[AccountStatement, Fact]] = {}
    for st in flex.statements:
        for f in st.facts:
            key = fact_key(st, f)
            facts[key] = (st, f)
            requests.append(Request(key, {"brokerage_account": st.ref, **f.payload()}))
    marks_on: dict[str, tuple[date, dict[str, int]]] = {}
    for st in flex.statements:
        for p in st.positions:
            if p.mark_e4:
                # The price is part of the key: a mark IBKR later revises is a new mark, not a conflict.
                key = f"ibkr:mark:{st.to_date.isoformat()}:{p.symbol}:{p.mark_e4}"
                marks_on[key] = (st.to_date, {p.symbol: p.mark_e4})
    requests += [
        Request(k, {"as_of": on.isoformat(), "prices": {s: v for s, v in m.items()}}) for k, (on, m) in marks_on.items()
    ]

    def apply(tx: Tx, fresh: list[Request]) -> list[FactImported | MarksApplied]:
        return _book(tx, flex, [(i, r.key) for i, r in enumerate(fresh)], facts, marks_on)

    results = write(engine, portfolio, actor, "broker.import", requests, apply) if requests else []
    by_key = {r.key: res for r, res in zip(requests, results, strict=True)}
    reports = []
    for st in flex.statements:
        rep = AccountImport(st.ref, mapping[st.account_id][1], f"{st.from_date} – {st.to_date}")
        for f in st.facts:
            if by_key[fact_key(st, f)].get("replayed"):
                rep.already_present += f.rows
            else:
                rep.added += f.rows
        rep.unsupported = dict(st.unsupported)
        rep.option_eae_rows = st.eae_rows
        reports.append(rep.to_dict())
    reconciliation = reconcile_flex(engine, portfolio, flex)
    record_reconciliation(engine, actor, portfolio, reconciliation)  # differences reach a person as alerts
    return {
        "accounts": reports,
        "marks": sum(1 for k in marks_on if not by_key[k].get("replayed")),
        "not_read": dict(sorted(flex.skipped_sections.items())),
        "ignored_attributes": dict(sorted(flex.ignored_attributes.items())),
        "reconciliation": reconciliation,
    }


def _book(
    tx: Tx,
    flex: FlexFile,
    fresh: list[tuple[int, str]],
    facts: dict[str, tuple[AccountStatement, Fact]],
    marks_on: dict[str, tuple[date, dict[str, int]]],
) -> list[FactImported | MarksApplied]:
    mapping = mapped_accounts(tx.conn, tx.portfolio_id, flex)
    out: dict[int, FactImported | MarksApplied] = {}
    rows: list[BrokerRow] = []
    # 1. Cash flows first, so the book below sees the deposits the trades were paid from.
    flows = [(i, k) for i, k in fresh if k in facts and facts[k][1].action in _CASH_FLOWS]
    if flows:
        out.update(_book_cash_flows(tx, [(i, *facts[k]) for i, k in flows], mapping, rows))
    # 2. Trades, expiries, assignments, dividends and fees: booked like typed fills.
    booked = [(i, k) for i, k in fresh if k in facts and facts[k][1].action not in _CASH_FLOWS]
    if booked:
        out.update(_book_fills(tx, [(i, *facts[k]) for i, k in booked], mapping, rows))
    statement_store.insert_broker_rows(tx.conn, rows)
    # 3. End-of-period marks, after the positions they value exist.
    for i, k in fresh:
        if k in marks_on:
            on, prices = marks_on[k]
            out[i] = apply_marks(tx, prices, on, tx.seq(i), known_only=True)
    return [out[i] for i, _k in fresh]


def _book_cash_flows(
    tx: Tx,
    flows: list[tuple[int, AccountStatement, Fact]],
    mapping: dict[str, tuple[int, str]],
    rows: list[BrokerRow],
) -> dict[int, FactImported]:
    """Deposits, withdrawals, interest and withholding: one journal entry each against its
    counter-account; a deposit or withdrawal moves base capital too."""
    conn, pid = tx.conn, tx.portfolio_id
    exts = {name: external_account(conn, pid, name, tx.now) for _kind, name in _CASH_FLOWS.values()}
    state = load_accounts(conn, pid, sorted({mapping[st.account_id][0] for _, st, _f in flows}))
    entries = []
    for i, st, f in flows:
        acc = state[mapping[st.account_id][0]]
        kind, ext = _CASH_FLOWS[f.action]
        capital = f.amount_cents if kind in (TransferKind.DEPOSIT, TransferKind.WITHDRAWAL) else 0
        acc.add_cash(f.amount_cents, capital)
        legs = [Leg(acc.id, f.amount_cents), Leg(exts[ext], -f.amount_cents)]
        entries.append(JournalEntry(kind, legs, tx.seq(i), memo=(f.memo or f.action.lower())[:200]))
    ext_delta: Counter[int] = Counter()
    for e in entries:
        ext_delta[e.legs[1].account_id] += e.legs[1].amount_cents
    out: dict[int, FactImported] = {}
    for (i, st, f), tid in zip(flows, insert_journal(conn, pid, tx.now, entries), strict=True):
        out[i] = {"account": mapping[st.account_id][1], "action": f.action, "cash_cents": Cents(f.cash_cents)}
        rows.append(_row(tx, st, f, mapping, i, None, tid))
    apply_cash(conn, list(state.values()))
    book_store.add_cash(conn, pid, ext_delta)
    return out


def _book_fills(
    tx: Tx,
    booked: list[tuple[int, AccountStatement, Fact]],
    mapping: dict[str, tuple[int, str]],
    rows: list[BrokerRow],
) -> dict[int, FactImported]:
    """Every other fact booked exactly as a typed fill; the booked cash must be the statement's."""
    book = Book.opened(tx, len(booked))
    out: dict[int, FactImported] = {}
    recorded: list[tuple[int, Booked, int]] = []
    for n, (i, st, f) in enumerate(booked):
        fill = Fill(
            mapping[st.account_id][0],
            FillAction(f.action),
            f.symbol,
            f.quantity,
            f.price,
            f.commission_cents,
            f.on,
            f.amount_cents,
            f.multiplier if f.multiplier != 1 else 100,  # a stock ignores it
        )
        try:
            b = book.record(fill, tx.seq(i))
        except InvalidInput as exc:
            raise type(exc)(f"{st.ref} {f.key}: {exc}") from None
        if b.cash_cents != f.cash_cents:
            raise InvalidInput(
                f"{st.ref} {f.key}: booked cash {format_usd(b.cash_cents)} differs from the "
                f"statement's {format_usd(f.cash_cents)}"
            )
        out[i] = {
            "account": b.account,
            "action": f.action,
            "cash_cents": Cents(f.cash_cents),
            "realized_cents": Cents(b.realized_cents),
        }
        recorded.append((i, b, fill.multiplier))
        rows.append(_row(tx, st, f, mapping, i, b.fill_id, None))
        if (n + 1) % FLUSH_EVERY == 0:
            book.flush(final=False)
    book.flush()
    for i, b, multiplier in recorded:
        # A purchase executes the reinvestment earmark planned for it, as a typed fill does.
        if drawn := draw_earmark(tx, book, b, multiplier, i):
            out[i]["earmark_drawn_cents"] = Cents(drawn)
    return out


def _row(
    tx: Tx,
    st: AccountStatement,
    f: Fact,
    mapping: dict[str, tuple[int, str]],
    i: int,
    fill_id: int | None,
    transfer_id: int | None,
) -> BrokerRow:
    return {
        "portfolio_id": tx.portfolio_id,
        "account_id": mapping[st.account_id][0],
        "broker": BROKER,
        "number": st.account_id,
        "broker_key": f.key,
        "action": f.action,
        "booked_on": f.on,
        "cash_cents": f.cash_cents,
        "fill_id": fill_id,
        "transfer_id": transfer_id,
        "audit_seq": tx.seq(i),
    }


# --- reconciliation -------------------------------------------------------------------------------


def reconcile_statement(engine: Engine, portfolio: str | int | None, data: bytes) -> Reconciliation:
    return reconcile_flex(engine, portfolio, read_flex(data))


def reconcile_flex(engine: Engine, portfolio: str | int | None, flex: FlexFile) -> Reconciliation:
    """Each mapped account's cash and positions (quantity, cost basis) against the statement, as of
    the statement's end date. `differences` lists every mismatch; none means reconciled."""
    from alluse.store.scope import resolve_portfolio

    out: list[AccountReconciled] = []
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        mapping = mapped_accounts(conn, pid, flex)
        for st in flex.statements:
            aid, name = mapping[st.account_id]
            diffs: list[Difference] = []
            held = account_as_of(conn, pid, aid, st.to_date)
            cash = held.cash
            if st.ending_cash_cents is None:
                note = "the statement has no USD ending cash: tick Cash Report in the Flex query"
                diffs.append({"what": "cash", "broker_cents": None, "alluse_cents": Cents(cash), "note": note})
            elif st.ending_cash_cents != cash:
                diffs.append({"what": "cash", "broker_cents": Cents(st.ending_cash_cents), "alluse_cents": Cents(cash)})
            ours = _positions(held)
            theirs = {p.symbol: (p.quantity, p.cost_basis_cents) for p in st.positions}
            for symbol in sorted(ours.keys() | theirs.keys()):
                bq, bb = theirs.get(symbol, (0, 0))
                aq, ab = ours.get(symbol, (0, 0))
                if bq != aq:
                    diffs.append({"what": "quantity", "symbol": symbol, "broker_quantity": bq, "alluse_quantity": aq})
                elif bb != ab:
                    diffs.append(
                        {"what": "cost basis", "symbol": symbol, "broker_cents": Cents(bb), "alluse_cents": Cents(ab)}
                    )
            out.append(
                {
                    "brokerage_account": st.ref,
                    "account": name,
                    "as_of": st.to_date.isoformat(),
                    "cash_cents": Cents(cash),
                    "positions": len(theirs),
                    "differences": diffs,
                    "not_compared": {k: v for k, v in st.unsupported.items() if k.startswith(("positions", "cash in"))},
                }
            )
    return {"accounts": out, "differences": sum(len(a["differences"]) for a in out)}


def _positions(held: AccountAsOf) -> dict[str, tuple[int, int]]:
    """symbol → (signed quantity, cost basis in cents) of the lots open on the day. Cost basis takes
    IBKR's sign: what a long position cost (positive), a short option's net credit (negative)."""
    out: dict[str, tuple[int, int]] = {}
    for lot in held.lots:
        q, b = out.get(lot.symbol, (0, 0))
        out[lot.symbol] = (q + (lot.remaining if lot.side == Side.LONG else -lot.remaining), b - lot.remaining_cash)
    return out


# --- fetching -------------------------------------------------------------------------------------


def flex_credentials(text: str, ref: str) -> tuple[str, str]:
    """The stored credentials of an IBKR account: JSON {"flex_token": …, "flex_query_id": …}."""
    try:
        data = json.loads(text)
        token, query = str(data["flex_token"]).strip(), str(data["flex_query_id"]).strip()
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            f"the credentials of {ref} are not Flex credentials; store them with alluse broker flex-credentials"
        ) from None
    if not token or not query:
        raise InvalidInput(f"the Flex credentials of {ref} need flex_token and flex_query_id")
    return token, query


def fetch_statement(
    engine: Engine, portfolio: str | int | None, ref: str, keyring: Keyring, settings: Settings
) -> bytes:
    """Download the account's Flex statement through the Flex Web Service (its stored token and query
    id); refuses a statement that does not cover the account."""
    parsed = parse_brokerage_ref(ref)
    if parsed.broker != BROKER:
        raise InvalidInput(f"{parsed} is not an IBKR account: only IBKR statements can be fetched")
    text = read_credentials(engine, portfolio, str(parsed), keyring)
    if text is None:
        raise InvalidInput(f"{parsed} has no stored credentials; store them with alluse broker flex-credentials")
    token, query = flex_credentials(text, str(parsed))
    source = FlexWebService(
        settings.ibkr_flex_url, token, query, settings.ibkr_flex_poll_seconds, settings.ibkr_flex_max_polls
    )
    data = source.statement()
    if parsed.number not in {s.account_id for s in read_flex(data).statements}:
        raise InvalidInput(f"the statement of Flex query {query} does not cover {parsed}; nothing was imported")
    return data


def fetch_and_import(
    engine: Engine, actor: str, portfolio: str | int | None, ref: str, keyring: Keyring, settings: Settings
) -> tuple[bytes, StatementImported]:
    """Download the account's Flex statement, then import it."""
    data = fetch_statement(engine, portfolio, ref, keyring, settings)
    return data, import_statement(engine, actor, portfolio, data)
