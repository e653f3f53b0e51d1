"""The most frequent request, one account read (`GET /portfolios/{portfolio}/accounts/{account}`),
answered without FastAPI's per-request machinery.

Solving the route's dependencies (the JSON check, the bearer scheme, the portfolio scope, two path
parameters) cost FastAPI more than the read itself: about 110 µs of a read's 290 µs in one process,
where the authorization check and the query take about 75 µs. This ASGI layer sits inside the
request log, the body limits and the security headers, and answers a plain successful read itself,
with the same checks in the same order on one connection: the token and the caller's role through
`deps.scope_in` (so a revoked token, user or grant takes effect at once, as everywhere), the account
through `views.accounts.account_detail_in`, the answer serialized by the route's own response model
as FastAPI does it. Anything else (another route, a parameter out of bounds, a missing or other
kind of credential, any error at all) goes on to the app unchanged, which then answers it, with
its usual problem+json; a read has no effects, so doing it again there changes nothing.

The route stays declared in its router (api/routers/accounts.py): the OpenAPI document, and every
request this layer passes on, are the app's own."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from alluse.api.deps import Context, scope_in
from alluse.api.money import typed_money
from alluse.views.access import Role
from alluse.views.accounts import AccountDetail, account_detail_in

# The route's path parameters' bounds (api/deps.PortfolioRef, api/routers/accounts.one): outside
# them FastAPI answers 422 itself.
PORTFOLIO_CHARS = 100
ACCOUNT_CHARS = 60


class AccountReads:
    def __init__(self, app: ASGIApp, route: APIRoute, ctx: Context, overrides: dict[Any, Any]) -> None:
        self.app = app
        self.route = route
        self.ctx = ctx
        self.overrides = overrides  # the app's dependency overrides: with any, its dependencies decide

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not self.overrides:
            response = self._answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        """The answer to a plain successful read, or None for the app to answer."""
        match, child = self.route.matches(scope)
        if match is not Match.FULL:
            return None
        params = child["path_params"]
        portfolio, account = params["portfolio"], params["account"]
        if not (0 < len(portfolio) <= PORTFOLIO_CHARS and 0 < len(account) <= ACCOUNT_CHARS):
            return None
        credentials = _bearer(scope)
        if credentials is None:
            return None
        c = self.ctx
        state = scope.setdefault("state", {})
        try:
            with c.engine.connect() as conn:
                found = scope_in(conn, c, credentials, portfolio, Role.viewer, state)
                detail = account_detail_in(conn, found.portfolio_id, account)
            body = self._json(typed_money(detail, AccountDetail))
        except Exception:  # whatever went wrong, the app answers it as it answers any request
            return None
        scope.update(child)  # the route, as the request log names it
        return Response(content=body, media_type="application/json")

    def _json(self, value: Any) -> bytes:
        # What FastAPI's handler does with an endpoint's return value (fastapi.routing: `dump_json`).
        r = self.route
        checked, errors = r.response_field.validate(value, {}, loc=("response",))  # type: ignore[union-attr]
        if errors:
            raise ValueError(f"an account read does not fit its response model: {errors}")
        return r.response_field.serialize_json(  # type: ignore[union-attr]
            checked,
            include=r.response_model_include,
            exclude=r.response_model_exclude,
            by_alias=r.response_model_by_alias,
            exclude_unset=r.response_model_exclude_unset,
            exclude_defaults=r.response_model_exclude_defaults,
            exclude_none=r.response_model_exclude_none,
        )


def _bearer(scope: Scope) -> HTTPAuthorizationCredentials | None:
    """The bearer credentials as fastapi.security.HTTPBearer reads them, or None."""
    authorization = Headers(scope=scope).get("authorization")
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not credentials or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


def account_route() -> APIRoute:
    """The route as its router declares it (the app holds its routers as they were included)."""
    from alluse.api.routers import accounts

    return next(r for r in accounts.router.routes if isinstance(r, APIRoute) and r.endpoint is accounts.one)
