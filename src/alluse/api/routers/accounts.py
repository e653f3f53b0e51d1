"""The account tree and one account.

The hot read path: these run on the event loop. Their queries are indexed reads that take no locks
(SQLite WAL readers and PostgreSQL selects never wait on writers), so they cost less inline than the
thread-pool hop a sync endpoint takes (docs/api.md, "Performance")."""

from typing import Annotated

from fastapi import APIRouter, Path

from alluse.api.deps import Ctx, Viewer
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.accounts import AccountOut, TreeOut
from alluse.views.accounts import AccountDetail, AccountTree, account_detail, account_tree

router = APIRouter(tags=["accounts"], responses=responses(400, 401, 403, 404, 422))


@router.get("/portfolios/{portfolio}/accounts", response_model=TreeOut)
async def tree(scope: Viewer, c: Ctx) -> dict:
    """Every group with its sleeves: cash, buffer, deployable cash, status, brokerage account."""
    return typed_money(account_tree(c.engine, scope.portfolio_id), AccountTree)


@router.get("/portfolios/{portfolio}/accounts/{account}", response_model=AccountOut)
async def one(scope: Viewer, account: Annotated[str, Path(min_length=1, max_length=60)], c: Ctx) -> dict:
    return typed_money(account_detail(c.engine, scope.portfolio_id, account), AccountDetail)
