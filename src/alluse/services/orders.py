"""Orders: an intent is checked against the method (§7), recorded, and sent to the account's broker.

One unit of work per order: the check runs on locked, current state; a refused intent is recorded as
REFUSED (nothing is sent); an accepted one goes to the broker's order sink and its execution is booked
by `domain.booking` like any other fill, recorded as FILLED with its fill. An order needs a
mark of its instrument: the paper broker fills at the latest one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.base import Execution, Order
from alluse.brokers.paper import order_sink
from alluse.config import Settings
from alluse.domain.errors import InvalidInput, NotFound
from alluse.domain.instruments import Instrument, parse_symbol, price_text
from alluse.domain.money import Cents
from alluse.domain.parsing import parse_delta
from alluse.domain.protocol import OrderIntent as CheckedIntent
from alluse.domain.protocol import check
from alluse.services.brokers import broker_of
from alluse.services.protocol import account_view
from alluse.services.trades import Book, Fill, FillAction, draw_earmark
from alluse.store import orders as order_store
from alluse.store.orders import OrderIntentRow
from alluse.store.repo import allocate_ids, resolve_account
from alluse.store.schema import order_intents
from alluse.store.uow import Request, Tx, write


class OrderPayload(TypedDict):
    """An order intent as the audit record stores it."""

    account: str
    action: str
    symbol: str
    quantity: int
    delta: str | None
    on: str
    accept_warnings: bool


@dataclass(frozen=True, slots=True)
class OrderIntent:
    account: str
    action: str  # BTO, STO, BTC, STC
    symbol: str
    quantity: int
    delta: str | None = None
    on: date | None = None
    accept_warnings: bool = False

    def __post_init__(self) -> None:
        if self.action not in ("BTO", "STO", "BTC", "STC"):
            raise InvalidInput(f"order action must be BTO, STO, BTC or STC, got {self.action!r}")
        if not isinstance(self.quantity, int) or not 0 < self.quantity <= 10**9:
            raise InvalidInput(f"quantity must be a positive whole number, got {self.quantity!r}")
        parse_symbol(self.symbol)
        if self.delta is not None:
            parse_delta(self.delta, signed=True)

    def payload(self) -> OrderPayload:
        return {
            "account": self.account,
            "action": self.action,
            "symbol": parse_symbol(self.symbol).symbol,
            "quantity": self.quantity,
            "delta": self.delta,
            "on": (self.on or date.today()).isoformat(),
            "accept_warnings": self.accept_warnings,
        }


def latest_mark(conn: sa.Connection, portfolio_id: int, symbol: str) -> int:
    price = order_store.latest_mark_price(conn, portfolio_id, symbol)
    if price is None:
        raise NotFound(f"no mark for {symbol!r}: record one with alluse mark before ordering")
    return int(price)


class OrderPlaced(TypedDict):
    """A placed order: REFUSED with its violations, or FILLED with its fill (the audit entry stores it)."""

    account: str
    action: str
    symbol: str
    quantity: int
    broker: str
    violations: list[str]
    warnings: list[str]
    order_id: int
    status: str
    price: NotRequired[str]
    commission_cents: NotRequired[Cents]
    cash_cents: NotRequired[Cents]
    fill_id: NotRequired[int]
    buffer_breach: NotRequired[bool]
    earmark_drawn_cents: NotRequired[Cents]
    replayed: NotRequired[bool]


def place_order(
    engine: Engine, actor: str, portfolio: str | int | None, key: str, intent: OrderIntent, settings: Settings
) -> OrderPlaced:
    ins = parse_symbol(intent.symbol)
    on = intent.on or date.today()

    def apply(tx: Tx, _reqs: list[Request]) -> list[OrderPlaced]:
        conn, pid = tx.conn, tx.portfolio_id
        aid = resolve_account(conn, pid, intent.account)
        broker = broker_of(conn, pid, aid)
        if broker is None:
            raise InvalidInput(f"{intent.account} has no brokerage account to send orders to")
        sink = order_sink(broker, settings.paper_commission_per_contract, settings.paper_commission_per_share)
        mark = latest_mark(conn, pid, ins.symbol)
        view = account_view(conn, pid, aid)
        delta = parse_delta(intent.delta, signed=True) if intent.delta else None
        result = check(CheckedIntent(intent.action, ins, intent.quantity, mark, on, delta), view)
        violations = list(result.violations)
        if result.ok and result.warnings and not intent.accept_warnings:
            violations.append("warnings ask for a human decision: accept them explicitly to send the order")
        row = _intent_row(tx, aid, intent, ins.symbol, mark, broker, violations, result.warnings)
        out: OrderPlaced = {
            "account": view.label,
            "action": intent.action,
            "symbol": ins.symbol,
            "quantity": intent.quantity,
            "broker": broker,
            "violations": violations,
            "warnings": result.warnings,
            "order_id": 0,
            "status": "REFUSED",
        }
        if violations:
            out["order_id"] = allocate_ids(conn, order_intents, 1)
            order_store.insert_order_intent(conn, out["order_id"], "REFUSED", None, row)
            return [out]
        return [
            _execute(tx, sink.place(Order(intent.action, ins, intent.quantity, mark)), intent, ins, aid, on, row, out)
        ]

    placed = write(engine, portfolio, actor, "order.place", [Request(key, dict(intent.payload()))], apply)[0]
    return cast(OrderPlaced, placed)


def _intent_row(
    tx: Tx,
    aid: int,
    intent: OrderIntent,
    symbol: str,
    mark: int,
    broker: str,
    violations: list[str],
    warnings: list[str],
) -> OrderIntentRow:
    """The order intent as stored, with what the pre-trade check said."""
    return {
        "portfolio_id": tx.portfolio_id,
        "account_id": aid,
        "action": intent.action,
        "symbol": symbol,
        "quantity": intent.quantity,
        "limit_e4": mark,
        "broker": broker,
        "check_result": json.dumps({"violations": violations, "warnings": warnings}),
        "audit_seq": tx.seq(0),
        "created_at": tx.now,
    }


def _execute(
    tx: Tx,
    execution: Execution,
    intent: OrderIntent,
    ins: Instrument,
    aid: int,
    on: date,
    row: OrderIntentRow,
    out: OrderPlaced,
) -> OrderPlaced:
    """Book the broker's execution of an order that passed its checks, like any other fill."""
    book = Book.opened(tx, 1, aid)
    fill = Fill(
        aid,
        FillAction(intent.action),
        ins.symbol,
        intent.quantity,
        price_text(execution.price_e4),
        execution.commission_cents,
        on,
        multiplier=ins.multiplier if ins.is_option else 100,
    )
    booked = book.record(fill, tx.seq(0))
    book.flush()
    # A purchase executes the reinvestment earmark planned for it, as a typed fill does.
    drawn = draw_earmark(tx, book, booked, fill.multiplier, 0)
    oid = allocate_ids(tx.conn, order_intents, 1)
    order_store.insert_order_intent(tx.conn, oid, "FILLED", booked.fill_id, row)
    return {
        **out,
        "order_id": oid,
        "status": "FILLED",
        "price": price_text(execution.price_e4),
        "commission_cents": Cents(execution.commission_cents),
        "cash_cents": Cents(booked.cash_cents),
        "fill_id": booked.fill_id,
        "buffer_breach": book.breached.get(aid, False),
        "earmark_drawn_cents": Cents(drawn),
    }
