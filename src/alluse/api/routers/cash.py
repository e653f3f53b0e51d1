"""Moving cash: deposits, withdrawals, transfers between sleeves, and reversals."""

from fastapi import APIRouter

from alluse.api.deps import Context, Ctx, IdemKey, Scope, Trader
from alluse.api.hardening import in_thread
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.cash import DepositIn, MoveOut, ReversalIn, ReversalOut, TransferIn, WithdrawalIn
from alluse.domain.parsing import parse_money
from alluse.services import cash
from alluse.services.cash import CashMoved, Reversed

router = APIRouter(tags=["cash"], responses=responses(400, 401, 403, 404, 409, 422))


@router.post("/portfolios/{portfolio}/deposits", response_model=MoveOut, status_code=201)
@in_thread
def deposit(scope: Trader, body: DepositIn, c: Ctx, key: IdemKey) -> dict:
    """Add funds to a group (split by its allocation) or to one account."""
    return typed_money(deposited(scope, body, c, key), CashMoved)


def deposited(scope: Scope, body: DepositIn, c: Context, key: str) -> CashMoved:
    """The deposit made, or replayed; all or nothing: an error means nothing was written (api/fastpath.py
    hands such a request on to the app on that promise)."""
    move = cash.deposit(body.to, parse_money(body.amount), group=body.group, memo=body.memo)
    return cash.move_cash(c.engine, scope.actor, scope.portfolio_id, [(key, move)])[0]


@router.post("/portfolios/{portfolio}/withdrawals", response_model=MoveOut, status_code=201)
@in_thread
def withdraw(scope: Trader, body: WithdrawalIn, c: Ctx, key: IdemKey) -> dict:
    """Withdraw cash: never from a Com-Acc, never into the cash buffer without an owner's override."""
    move = cash.withdrawal(body.account, parse_money(body.amount), memo=body.memo)
    override = scope.override(body.override_reason)
    return typed_money(cash.move_cash(c.engine, scope.actor, scope.portfolio_id, [(key, move)], override)[0], CashMoved)


@router.post("/portfolios/{portfolio}/transfers", response_model=MoveOut, status_code=201)
@in_thread
def transfer(scope: Trader, body: TransferIn, c: Ctx, key: IdemKey) -> dict:
    """Move cash between two sleeves of the portfolio, subject to the buffer rule."""
    move = cash.transfer(body.from_account, body.to_account, parse_money(body.amount), memo=body.memo)
    override = scope.override(body.override_reason)
    return typed_money(cash.move_cash(c.engine, scope.actor, scope.portfolio_id, [(key, move)], override)[0], CashMoved)


@router.post("/portfolios/{portfolio}/reversals", response_model=ReversalOut, status_code=201)
@in_thread
def reverse(scope: Trader, body: ReversalIn, c: Ctx, key: IdemKey) -> Reversed:
    """Correct a deposit, withdrawal or transfer with a reversing entry (nothing is edited in place)."""
    override = scope.override(body.override_reason)
    return cash.reverse(c.engine, scope.actor, scope.portfolio_id, body.transfer_id, body.reason, key, override)
