"""`check-trade`: an order intent checked against its account's rules before it reaches a broker.
Reads only; the account's rules are its template with its overrides (domain/rules.py)."""

from __future__ import annotations

import json
from datetime import date
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind
from alluse.domain.errors import InvalidInput
from alluse.domain.instruments import parse_price, parse_symbol, value_cents
from alluse.domain.parsing import parse_delta
from alluse.domain.protocol import AccountView, OrderIntent, check
from alluse.domain.rules import effective_rules
from alluse.store.repo import load_accounts, resolve_account
from alluse.store.schema import account_config, instruments, positions
from alluse.store.scope import resolve_portfolio


class TradeCheck(TypedDict):
    """What the pre-trade check said of an order intent."""

    account: str
    order: str  # the intent as a person reads it: "STO 2 SPY… @ 1.25"
    ok: bool
    violations: list[str]
    warnings: list[str]


def account_view(conn: sa.Connection, pid: int, aid: int) -> AccountView:
    acc = load_accounts(conn, pid, [aid])[aid]
    cfg = conn.execute(
        sa.select(account_config.c.template, account_config.c.overrides).where(account_config.c.account_id == aid)
    ).one()
    rules = effective_rules(cfg.template, AccountKind(acc.kind), json.loads(cfg.overrides))
    p, i = positions.c, instruments.c
    shares: dict[str, int] = {}
    covering: dict[str, int] = {}
    exposure: dict[str, int] = {}
    q = (
        sa.select(i.kind, i.underlying, i.put_call, i.strike_e4, i.multiplier, p.quantity, p.mark_e4)
        .join(instruments, sa.and_(i.portfolio_id == p.portfolio_id, i.id == p.instrument_id))
        .where(p.account_id == aid, p.quantity != 0)
    )
    for kind, und, pc, strike, mult, qty, mark in conn.execute(q):
        if kind == "STOCK":
            shares[und] = shares.get(und, 0) + qty
            exposure[und] = exposure.get(und, 0) + value_cents(qty, mark, mult)
        elif pc == "C" and qty < 0:
            covering[und] = covering.get(und, 0) - qty * mult
        elif pc == "P" and qty < 0:
            exposure[und] = exposure.get(und, 0) + value_cents(-qty, strike, mult)
        elif qty > 0:
            exposure[und] = exposure.get(und, 0) + value_cents(qty, mark, mult)
    return AccountView(acc.kind, acc.label, rules, acc.snapshot, shares, covering, exposure)


def check_trade(
    engine: Engine,
    portfolio: str | int | None,
    account: str | int,
    action: str,
    symbol: str,
    quantity: int,
    price: str,
    on: date,
    delta: str | None = None,
) -> TradeCheck:
    action = action.strip().upper()
    if action not in ("BTO", "STO", "BTC", "STC"):
        raise InvalidInput(f"order action must be BTO, STO, BTC or STC, got {action!r}")
    if quantity <= 0:
        raise InvalidInput("quantity must be positive")
    ins = parse_symbol(symbol)
    intent = OrderIntent(
        action, ins, quantity, parse_price(price), on, parse_delta(delta, signed=True) if delta else None
    )
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        aid = resolve_account(conn, pid, account)
        view = account_view(conn, pid, aid)
    result = check(intent, view)
    return {
        "account": view.label,
        "order": f"{action} {quantity} {ins.symbol} @ {price}",
        "ok": result.ok,
        "violations": result.violations,
        "warnings": result.warnings,
    }
