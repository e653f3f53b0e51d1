"""Logging in, tokens, users, roles per portfolio and API keys."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from alluse.api.deps import Caller, Ctx, IdemKey, Owner, login_keys, require_admin, require_user
from alluse.api.problems import responses
from alluse.api.schemas.auth import (
    ApiKeyIn,
    ApiKeyOut,
    LoginIn,
    MeOut,
    RefreshIn,
    RoleIn,
    RoleOut,
    TokenOut,
    UserIn,
    UserOut,
)
from alluse.domain.errors import NotFound
from alluse.security.tokens import TokenPair
from alluse.services import access, sessions
from alluse.views.access import Principal, portfolio_id_for, role_on, visible_portfolios

Username = Annotated[str, Path(min_length=1, max_length=50)]

router = APIRouter(tags=["auth"], responses=responses(400, 401, 403, 404, 409, 422))


@router.post("/auth/login", response_model=TokenOut, responses=responses(429))
def login(body: LoginIn, request: Request, c: Ctx) -> TokenPair:
    """Exchange a username and password for an access token and a refresh token. Throttled per
    username and per client address (429 with Retry-After), counted before the password is checked."""
    user_key, client_key = login_keys(body.username, request)
    c.throttle.attempt(user_key, client_key)
    who = access.login(c.engine, body.username, body.password)
    c.throttle.succeeded(user_key, client_key)
    request.state.actor = who.actor
    return sessions.start(c.engine, c.tokens, who)


@router.post("/auth/refresh", response_model=TokenOut)
def refresh(body: RefreshIn, c: Ctx) -> TokenPair:
    """A new token pair for a refresh token, which is used up: presenting it again revokes every
    token of the same login (reuse detection). The user must still be active."""
    return sessions.refresh(c.engine, c.tokens, body.refresh_token)


@router.get("/auth/me", response_model=MeOut)
def me(who: Caller, c: Ctx) -> dict:
    return {
        "actor": who.actor,
        "kind": who.kind,
        "is_admin": who.is_admin,
        "portfolios": visible_portfolios(c.engine, who),
    }


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, c: Ctx, _admin: Principal = Depends(require_admin)) -> access.UserCreated:
    """Admin: create a user. Roles are granted per portfolio by its owners."""
    return access.create_user(c.engine, body.username, body.password, is_admin=body.is_admin)


@router.get("/users", response_model=list[UserOut])
def list_users(c: Ctx, _admin: Principal = Depends(require_admin)) -> list:
    """Admin: every user, with the admin and disabled flags."""
    return access.list_users(c.engine)


@router.get("/portfolios/{portfolio}/roles", response_model=list[RoleOut])
def list_roles(scope: Owner, c: Ctx) -> list:
    return access.list_roles(c.engine, scope.portfolio_id)


@router.put("/portfolios/{portfolio}/roles/{username}", response_model=RoleOut)
def grant_role(scope: Owner, username: Username, body: RoleIn, c: Ctx, key: IdemKey) -> access.UserRole:
    """Owner: give a user a role on this portfolio (replacing the one they held). Only users who
    already hold a role on a portfolio you own can be named; an admin grants a user's first role.
    Any other name gets the same 404, whether or not it exists."""
    return access.grant_role(
        c.engine, scope.actor, scope.portfolio_id, username, body.role, key, grantor=scope.principal
    )


@router.delete("/portfolios/{portfolio}/roles/{username}", response_model=RoleOut)
def revoke_role(scope: Owner, username: Username, c: Ctx, key: IdemKey) -> access.RoleRevoked:
    return access.revoke_role(c.engine, scope.actor, scope.portfolio_id, username, key)


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201)
def create_api_key(
    body: ApiKeyIn, c: Ctx, key: IdemKey, who: Principal = Depends(require_user)
) -> access.ApiKeyCreated:
    """A key for automation, scoped to portfolios and roles; you must own each portfolio in scope.
    The secret is in this answer only."""
    with c.engine.connect() as conn:
        scopes = []
        for s in body.scopes:
            pid = portfolio_id_for(conn, s.portfolio)
            if pid is None or role_on(conn, who, pid) is None:
                raise NotFound(f"no portfolio {s.portfolio!r} you have access to")
            scopes.append((pid, s.role))
    return access.create_api_key(c.engine, who, body.name, scopes, key)


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_api_keys(c: Ctx, who: Principal = Depends(require_user)) -> list:
    return access.list_api_keys(c.engine, who)


@router.delete("/api-keys/{api_key_id}", response_model=ApiKeyOut)
def revoke_api_key(
    api_key_id: Annotated[int, Path(ge=1, le=2**62)], c: Ctx, key: IdemKey, who: Principal = Depends(require_user)
) -> access.ApiKeyRevoked:
    """Revoke a key you made (admin: any key); it stops working at once."""
    return access.revoke_api_key(c.engine, who, api_key_id, key)
