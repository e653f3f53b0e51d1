"""Request-scoped dependencies: who is calling, on which portfolio, with which idempotency key.

`portfolio_scope` is the one place a request's portfolio is resolved and checked against the
caller's role; every portfolio route gets its `Scope` from it and hands `scope.portfolio_id` and
`scope.actor` to the service. Per-request database context (such as a row-level security setting)
belongs here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Header, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alluse.config import Settings
from alluse.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from alluse.domain.parsing import validate_key
from alluse.security.keyring import Keyring
from alluse.security.tokens import TokenIssuer
from alluse.services.ratelimit import LoginThrottle
from alluse.views.access import API_KEY_PREFIX, Principal, Role, api_key_principal, portfolio_role_in, user_principal


@dataclass
class Context:
    """What the app is built with; one per app, on app.state.ctx."""

    engine: sa.Engine
    settings: Settings
    keyring: Keyring
    tokens: TokenIssuer
    throttle: LoginThrottle


# Dependencies that do no I/O are async: FastAPI runs sync ones in the thread pool, a hop that costs
# more than the work itself on a read.
async def ctx(request: Request) -> Context:
    return request.app.state.ctx


Ctx = Annotated[Context, Depends(ctx)]


def login_keys(username: str, request: Request) -> tuple[str, str]:
    """The two keys a login attempt is throttled on. The client address is the TCP peer, or what a
    proxy listed in ALLUSE_TRUSTED_PROXIES forwarded (api/app.py)."""
    return f"user:{username.strip().lower()}", f"ip:{request.client.host if request.client else '-'}"


bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login, or an API key")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def authenticate(conn: sa.Connection, c: Context, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("authentication required: send Authorization: Bearer <token or API key>")
    token = credentials.credentials.strip()
    if token.startswith(API_KEY_PREFIX + "_"):
        return api_key_principal(conn, token)
    uid, version = c.tokens.read(token, "access")
    return user_principal(conn, uid, version)


def principal(request: Request, c: Ctx, credentials: Credentials = None) -> Principal:
    with c.engine.connect() as conn:
        who = authenticate(conn, c, credentials)
    request.state.actor = who.actor
    return who


Caller = Annotated[Principal, Depends(principal)]


async def require_user(who: Caller) -> Principal:
    if who.kind != "user":
        raise Forbidden("this needs a user login, not an API key")
    return who


async def require_admin(who: Caller) -> Principal:
    if not who.is_admin:
        raise Forbidden("admin only")
    return who


@dataclass(frozen=True, slots=True)
class Scope:
    principal: Principal
    portfolio_id: int
    role: Role

    @property
    def actor(self) -> str:
        return self.principal.actor

    def override(self, reason: str | None) -> str | None:
        """The buffer-rule override is an owner's (or admin's) decision, never a trader's."""
        if reason is not None and self.role < Role.owner:
            raise Forbidden("only an owner or admin may override the cash buffer")
        return reason


PortfolioRef = Annotated[str, Path(min_length=1, max_length=100, description="Portfolio id or name")]


def scope_in(
    conn: sa.Connection,
    c: Context,
    credentials: HTTPAuthorizationCredentials | None,
    portfolio: str,
    least: Role,
    state: dict[str, object],
) -> Scope:
    """Who is calling and what they may do on `portfolio`, checked on `conn`, whose transaction is
    then scoped to that portfolio; `state` (the request's) is told the actor for the request log.
    The one authorization check of every portfolio request (also `api/fastpath.py`'s)."""
    who = authenticate(conn, c, credentials)
    state["actor"] = who.actor
    # Row-level security: the role lookup, like everything after it, sees this portfolio only.
    found = portfolio_role_in(conn, who, portfolio)
    if found is None:
        # The same answer for "does not exist" and "not yours", so nothing leaks.
        raise NotFound(f"no portfolio {portfolio!r} you have access to")
    pid, role = found
    if role < least:
        raise Forbidden(f"{least.name} role needed on this portfolio (you hold {role.name})")
    return Scope(who, pid, role)


def portfolio_scope(least: Role) -> Callable[..., Awaitable[Scope]]:
    async def dependency(request: Request, portfolio: PortfolioRef, credentials: Credentials = None) -> Scope:
        # On the event loop, in one connection: a few lock-free primary-key reads cost less than the
        # thread-pool hop a sync dependency takes (docs/api.md, "Performance"). The context is read
        # here rather than through `Ctx`: one dependency less to solve on every portfolio request.
        c: Context = request.app.state.ctx
        with c.engine.connect() as conn:
            return scope_in(conn, c, credentials, portfolio, least, request.scope.setdefault("state", {}))

    return dependency


Viewer = Annotated[Scope, Depends(portfolio_scope(Role.viewer))]
Trader = Annotated[Scope, Depends(portfolio_scope(Role.trader))]
Owner = Annotated[Scope, Depends(portfolio_scope(Role.owner))]


KEY_CHARS = 200  # the Idempotency-Key header's bound: longer, FastAPI answers 422 itself


async def idempotency_key(
    response: Response,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=KEY_CHARS,
            description="Re-sending the same key never acts twice; generated (and returned) when absent.",
        ),
    ] = None,
) -> str:
    key = idempotency_key_of(key)
    response.headers["Idempotency-Key"] = key
    return key


def idempotency_key_of(sent: str | None) -> str:
    """The key a request's Idempotency-Key header gives it (also `api/fastpath.py`'s)."""
    key = validate_key(sent) if sent is not None else f"api-{uuid.uuid4()}"
    if "\x00" in key:
        raise InvalidInput("idempotency key must not contain NUL")
    return key


IdemKey = Annotated[str, Depends(idempotency_key)]
