"""Simulated trading results as real broker facts, for tests, the benchmark and what-if runs.

A gain is a short put sold and left to expire worthless on the given day (its premium is a realized
short-term gain that day); a loss is a short put sold and bought back dearer the same day. Both go
through the fills, lots and tax ledger like any broker statement, so every figure the lifecycle reads
(post-tax surplus, the quarter's realized gain) comes out of the same code as in real use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput
from alluse.services.trades import Fill, FillAction, FillResult, record_fills

SIM_ROOT = "SIM"
SIM_STRIKE_E3 = 1_000  # a $1 strike: $100 of collateral per contract while open


def _put(expiry: date) -> str:
    return f"{SIM_ROOT:<6}{expiry:%y%m%d}P{SIM_STRIKE_E3:08d}"


def _per_share(cents: int) -> str:
    # One contract is 100 shares: cents / 100 shares / 100 cents a dollar, exact in 4 decimals.
    return str(Decimal(cents) / 10_000)


def result_fills(key: str, account: str | int, cents: int, on: date) -> list[tuple[str, Fill]]:
    if cents == 0:
        raise InvalidInput("a trading result may not be zero")
    if cents > 0:
        put = _put(on)
        return [
            (f"{key}:sto", Fill(account, FillAction.STO, put, 1, _per_share(cents), trade_date=on)),
            (f"{key}:exp", Fill(account, FillAction.EXPIRE, put, 1, trade_date=on)),
        ]
    put = _put(on + timedelta(days=30))
    return [
        (f"{key}:sto", Fill(account, FillAction.STO, put, 1, "0.01", trade_date=on)),
        (f"{key}:btc", Fill(account, FillAction.BTC, put, 1, _per_share(100 - cents), trade_date=on)),
    ]


def realize(
    engine: Engine, actor: str, portfolio: str | int | None, results: Sequence[tuple[str, str | int, int, date]]
) -> list[FillResult]:
    """(idempotency key, account, signed cents, day) each, all in one unit of work."""
    facts = [f for key, account, cents, on in results for f in result_fills(key, account, cents, on)]
    return record_fills(engine, actor, portfolio, facts)
