"""Broker facts (fills, expiries, assignments, dividends, fees), marks, open positions and lots,
alerts, and the pre-trade protocol check (ALLUSE_RULES §6, §7)."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from alluse.api.deps import Ctx, IdemKey, Trader, Viewer
from alluse.api.hardening import in_thread
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.common import Day
from alluse.api.schemas.trades import (
    AlertOut,
    CheckTradeIn,
    CheckTradeOut,
    FillBatchIn,
    FillBatchOut,
    FillIn,
    FillOut,
    MarksIn,
    MarksOut,
    PositionsOut,
)
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_money, validate_key
from alluse.services.alerts import open_alerts
from alluse.services.marks import MarksApplied, record_marks
from alluse.services.protocol import TradeCheck, check_trade
from alluse.services.reports import Holdings, holdings
from alluse.services.trades import Fill, FillAction, FillResult, record_fills

router = APIRouter(tags=["trades"], responses=responses(400, 401, 403, 404, 409, 422))


def _fill(body: FillIn) -> Fill:
    action = FillAction(body.action)
    # As the CLI: a fact without a date happened today, but an expiry happens on the option's expiry.
    on = body.trade_date if body.trade_date or action is FillAction.EXPIRE else date.today()
    return Fill(
        body.account,
        action,
        body.symbol,
        body.quantity,
        body.price,
        parse_money(body.commission, allow_zero=True) if body.commission is not None else 0,
        on,
        parse_money(body.amount) if body.amount is not None else 0,
        body.multiplier,
    )


@router.post("/portfolios/{portfolio}/fills", response_model=FillOut, status_code=201)
@in_thread
def fill(scope: Trader, body: FillIn, c: Ctx, key: IdemKey) -> dict:
    """Record one broker fact; positions, FIFO lots, the tax ledger and collateral update with it.
    Facts are never refused by the buffer rule: a breach raises a BUFFER_BREACH alert instead."""
    return typed_money(record_fills(c.engine, scope.actor, scope.portfolio_id, [(key, _fill(body))])[0], FillResult)


@router.post("/portfolios/{portfolio}/fills/batch", response_model=FillBatchOut, status_code=201)
@in_thread
def fill_batch(scope: Trader, body: FillBatchIn, c: Ctx, key: IdemKey) -> dict:
    """A statement import: every fact in order as one unit of work, all or nothing. Each fact keeps its
    own idempotency key, so re-sending a batch that overlaps an earlier one records only the new facts."""
    facts, seen = [], set()
    for n, f in enumerate(body.fills):
        fact_key = validate_key(f.key) if f.key is not None else f"{key}#{n}"
        if fact_key in seen:
            raise InvalidInput(f"fills[{n}]: key {fact_key!r} appears twice in the batch")
        seen.add(fact_key)
        try:
            facts.append((fact_key, _fill(f)))
        except InvalidInput as exc:
            raise InvalidInput(f"fills[{n}]: {exc}") from None
    results = record_fills(c.engine, scope.actor, scope.portfolio_id, facts)
    replayed = sum(1 for r in results if r.get("replayed"))
    return {"recorded": len(results) - replayed, "replayed": replayed, "fills": typed_money(results, list[FillResult])}


@router.post("/portfolios/{portfolio}/marks", response_model=MarksOut, status_code=201)
@in_thread
def marks(scope: Trader, body: MarksIn, c: Ctx, key: IdemKey) -> MarksApplied:
    """Record prices (symbol → price) and revalue the positions holding those instruments."""
    as_of = body.as_of or date.today()
    return record_marks(c.engine, scope.actor, scope.portfolio_id, key, body.prices, as_of)


@router.get("/portfolios/{portfolio}/positions", response_model=PositionsOut)
def positions(
    scope: Viewer,
    c: Ctx,
    account: Annotated[str | None, Query(min_length=1, max_length=100, description="One account")] = None,
    as_of: Annotated[
        Day | None,
        Query(description="Only facts dated on or before this day count (default: today, or the latest fact's date)"),
    ] = None,
) -> dict:
    """Open lots with value and unrealized P&L at their position's latest price; NAV per account."""
    return typed_money(holdings(c.engine, scope.portfolio_id, account, as_of), Holdings)


@router.get("/portfolios/{portfolio}/alerts", response_model=list[AlertOut])
def alerts(scope: Viewer, c: Ctx) -> list:
    """Open alerts (BUFFER_BREACH, ...), oldest first."""
    return open_alerts(c.engine, scope.portfolio_id)


@router.post("/portfolios/{portfolio}/check-trade", response_model=CheckTradeOut)
def check(scope: Viewer, body: CheckTradeIn, c: Ctx) -> TradeCheck:
    """Check an order intent against the method's rules (§7). Changes nothing: a refused intent is
    a 200 with `ok: false` and the violations, not an error."""
    return check_trade(
        c.engine,
        scope.portfolio_id,
        body.account,
        body.action,
        body.symbol,
        body.quantity,
        body.price,
        body.on or date.today(),
        body.delta,
    )
