"""Opening PRIMARY groups (Gen-Acc, Rev-Acc, Com-Acc with their cash buffers)."""

from fastapi import APIRouter

from alluse.api.deps import Ctx, IdemKey, Owner
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.groups import GroupIn, GroupOpenedOut
from alluse.domain.parsing import parse_money
from alluse.services.configuration import parse_allocation
from alluse.services.groups import GroupOpened, group_opening, open_group

router = APIRouter(tags=["groups"], responses=responses(400, 401, 403, 404, 409, 422))


@router.post("/portfolios/{portfolio}/groups", response_model=GroupOpenedOut, status_code=201)
def open_new_group(scope: Owner, body: GroupIn, c: Ctx, key: IdemKey) -> dict:
    """Owner: open a group with new capital, split by the allocation, mapped to brokerage accounts."""
    opening = group_opening(
        parse_money(body.amount, allow_zero=True),
        body.brokerage_accounts,
        parse_allocation(body.allocation) if body.allocation else None,
        body.name,
    )
    return typed_money(open_group(c.engine, scope.actor, scope.portfolio_id, key, opening), GroupOpened)
