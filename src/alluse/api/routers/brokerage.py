"""Brokerage accounts: the portfolio's pool, and write-only credentials."""

from typing import Annotated

from fastapi import APIRouter, Path

from alluse.api.deps import Ctx, IdemKey, Owner, Viewer
from alluse.api.problems import responses
from alluse.api.schemas.brokerage import BrokerageIn, BrokerageOut, CredentialsIn, CredentialsOut, RegisteredOut
from alluse.services import brokers
from alluse.views.brokers import list_brokerage

router = APIRouter(tags=["brokerage"], responses=responses(400, 401, 403, 404, 409, 422))


@router.get("/portfolios/{portfolio}/brokerage-accounts", response_model=list[BrokerageOut])
def list_accounts(scope: Viewer, c: Ctx) -> list:
    """Each brokerage account, what it maps to (POOL: unmapped) and whether credentials are stored."""
    return list_brokerage(c.engine, scope.portfolio_id)


@router.post("/portfolios/{portfolio}/brokerage-accounts", response_model=RegisteredOut, status_code=201)
def register(scope: Owner, body: BrokerageIn, c: Ctx, key: IdemKey) -> brokers.Registered:
    """Owner: register brokerage accounts into the pool, ready for new groups and forks."""
    return brokers.register(c.engine, scope.actor, scope.portfolio_id, body.accounts, key)


@router.put("/portfolios/{portfolio}/brokerage-accounts/{ref}/credentials", response_model=CredentialsOut)
def set_credentials(
    scope: Owner, ref: Annotated[str, Path(min_length=1, max_length=70)], body: CredentialsIn, c: Ctx, key: IdemKey
) -> brokers.CredentialsStored:
    """Owner: store the account's API credentials, encrypted at rest. Write-only: no endpoint returns them."""
    return brokers.set_credentials(c.engine, scope.actor, scope.portfolio_id, ref, body.credentials, key, c.keyring)
