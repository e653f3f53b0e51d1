"""Portfolios: the ones you hold a role on, and creating a new one (you become its owner)."""

from fastapi import APIRouter, Depends

from alluse.api.deps import Caller, Ctx, IdemKey, require_user
from alluse.api.problems import responses
from alluse.api.schemas.portfolios import PortfolioIn, PortfolioOut, PortfolioRole
from alluse.services import access
from alluse.services.portfolios import PortfolioCreated, create_portfolio
from alluse.views.access import Principal, visible_portfolios

router = APIRouter(tags=["portfolios"], responses=responses(400, 401, 403, 409, 422))


@router.get("/portfolios", response_model=list[PortfolioRole])
def list_portfolios(who: Caller, c: Ctx) -> list:
    """Portfolios you hold a role on (admin: all), with that role."""
    return visible_portfolios(c.engine, who)


@router.post("/portfolios", response_model=PortfolioOut, status_code=201)
def new_portfolio(body: PortfolioIn, c: Ctx, key: IdemKey, who: Principal = Depends(require_user)) -> PortfolioCreated:
    """Create a portfolio; its creator is made its owner. Portfolio names are unique system-wide."""
    # The creation key is the caller's own: another user re-sending the same key creates their own
    # portfolio (or conflicts on the name) and never replays into someone else's.
    creation_key = f"{who.actor}:{key}"
    result = create_portfolio(c.engine, who.actor, body.name, creation_key, body.template)
    access.grant_role(c.engine, who.actor, result["portfolio_id"], who.name, "owner", f"{creation_key}:owner")
    return result
