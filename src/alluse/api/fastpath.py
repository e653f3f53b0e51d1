"""The most frequent requests, one account read (`GET /portfolios/{portfolio}/accounts/{account}`) and
one deposit, answered without FastAPI's per-request machinery.

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

The most frequent write, a deposit (`POST /portfolios/{portfolio}/deposits`), has its own layer too
(`Deposits`): there FastAPI's dependency solving, body handling and response building were about a
million of a deposit's 3.45 million server instructions, half of what ran outside the unit of work.
It makes the checks the app makes, each as the app makes it (the JSON body's media type, keys and
bounds through `hardening`, the body through the route's own body field, the Idempotency-Key header
through `deps.idempotency_key_of`, the caller through `deps.scope_in` with the trader role), then
the route's own write (`routers.cash.deposited`) in a worker thread (`api/threads.py`), and answers
what that returns, a first deposit or a replay, serialized by the route's response model with the
Idempotency-Key header. A write may be handed on only while nothing is written: anything refused
before the write, or by it (the write is all or nothing), goes on to the app with the body it sent,
which then answers it with its usual problem+json, having written nothing either; once the write is
made, the answer is this layer's, and an error past it is the app's 500.

The routes stay declared in their routers (api/routers/): the OpenAPI document, and every request
these layers pass on, are the app's own."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from fastapi.routing import APIRoute, APIRouter
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alluse.api.deps import KEY_CHARS, Context, idempotency_key_of, scope_in
from alluse.api.hardening import OFFLOAD_BYTES, checked_json, media_type_error
from alluse.api.money import typed_money
from alluse.api.routers.cash import deposited
from alluse.api.threads import run_sync
from alluse.services.cash import CashMoved
from alluse.views.access import Role
from alluse.views.accounts import AccountDetail, account_detail_in

# The route's path parameters' bounds (api/deps.PortfolioRef, api/routers/accounts.one): outside
# them FastAPI answers 422 itself.
PORTFOLIO_CHARS = 100
ACCOUNT_CHARS = 60


class _Kept:
    """Connections kept for these layers' reads, each used by one request at a time. Taking one from
    the engine's pool and giving it back (checkout, the `Connection` made around it, reset, checkin)
    cost about 110,000 instructions a request, more than the authorization check's three reads. A
    kept connection is reset when given back as the pool resets one (its transaction rolled back), so
    every request reads what is committed when it reads, as on a pooled one; one whose reset fails is
    closed. They are out of the pool (`detach`), and closed when the engine is disposed of (a
    connection in use then, when it is given back). One set per engine, kept on the engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._idle: list[sa.Connection] = []
        self._era = 0  # disposals of the engine so far: a connection made before the last is not kept
        sa.event.listen(engine, "engine_disposed", self._close_idle)

    def take(self) -> sa.Connection:
        try:
            return self._idle.pop()  # atomic: the event loops of several threads may share an app
        except IndexError:
            conn = self._engine.connect()
            conn.detach()  # out of the pool for good: closing it closes it
            conn.info[_ERA] = self._era
            return conn

    def give_back(self, conn: sa.Connection) -> None:
        try:
            if conn.in_transaction():
                conn.rollback()
            else:  # a read through the driver's own cursor may have begun one SQLAlchemy knows nothing of
                conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        except Exception:
            conn.close()
            return
        if conn.info[_ERA] == self._era and not conn.invalidated:
            self._idle.append(conn)
        else:
            conn.close()

    def _close_idle(self, _engine: sa.Engine) -> None:
        self._era += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_ERA = "alluse_kept_era"
_KEPT_LOCK = threading.Lock()


def _kept(engine: sa.Engine) -> _Kept:
    # On the engine, as the unit of work's group: one listener per engine, however many apps serve it.
    with _KEPT_LOCK:
        kept: _Kept | None = getattr(engine, "_alluse_kept", None)
        if kept is None:
            kept = _Kept(engine)
            setattr(engine, "_alluse_kept", kept)  # noqa: B010 (Engine declares no such attribute)
    return kept


class _OwnPath:
    """An ASGI layer that answers one route's plain requests itself and hands the rest to the app."""

    def __init__(self, app: ASGIApp, route: APIRoute, ctx: Context, overrides: dict[Any, Any]) -> None:
        self.app = app
        self.route = route
        self.ctx = ctx
        self.overrides = overrides  # the app's dependency overrides: with any, its dependencies decide
        self.kept = _kept(ctx.engine)


class AccountReads(_OwnPath):
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
        credentials = _bearer(Headers(scope=scope))
        if credentials is None:
            return None
        c = self.ctx
        state = scope.setdefault("state", {})
        try:
            conn = self.kept.take()
            try:
                found = scope_in(conn, c, credentials, portfolio, Role.viewer, state)
                detail = account_detail_in(conn, found.portfolio_id, account)
            finally:
                self.kept.give_back(conn)
            body = _json(self.route, typed_money(detail, AccountDetail))
        except Exception:  # whatever went wrong, the app answers it as it answers any request
            return None
        scope.update(child)  # the route, as the request log names it
        return Response(content=body, media_type="application/json")


class Deposits(_OwnPath):
    def __init__(self, app: ASGIApp, route: APIRoute, ctx: Context, overrides: dict[Any, Any]) -> None:
        super().__init__(app, route, ctx, overrides)
        # The route's one body parameter, whole (not embedded): FastAPI validates the body with it at ("body",).
        assert not route._embed_body_fields and route.status_code is not None
        (self.body,) = route.dependant.body_params
        self.status_code = route.status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not self.overrides:
            match, child = self.route.matches(scope)
            if match is Match.FULL:
                received = _Received(receive)
                response = await self._answer(scope, child, received)
                if response is not None:
                    await response(scope, receive, send)
                    return
                receive = received.again
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, child: Scope, received: _Received) -> Response | None:
        """The answer to a deposit made or replayed here, or None (nothing written) for the app to answer."""
        portfolio = child["path_params"]["portfolio"]
        headers = Headers(scope=scope)
        credentials = _bearer(headers)
        sent_key = headers.get("idempotency-key")
        if not 0 < len(portfolio) <= PORTFOLIO_CHARS or credentials is None:
            return None
        if sent_key is not None and len(sent_key) > KEY_CHARS:
            return None
        body = await received.body()
        if not body or len(body) > OFFLOAD_BYTES:  # a big body is the app's: it checks it off the loop
            return None
        c = self.ctx
        try:
            # The checks of `hardening.strict_json`, in its order.
            if media_type_error(headers.get("content-type")):
                return None
            # Parsed once: the check's parse is `json.loads`'s, with repeated keys refused.
            value = checked_json(body, c.settings.max_json_depth, c.settings.max_json_keys)
            deposit, errors = self.body.validate(value, {}, loc=("body",))
            if errors:
                return None
            key = idempotency_key_of(sent_key)
            conn = self.kept.take()
            try:
                found = scope_in(conn, c, credentials, portfolio, Role.trader, scope.setdefault("state", {}))
            finally:
                self.kept.give_back(conn)
        except Exception:  # refused: the app answers it as it answers any request
            return None
        try:
            moved = await run_sync(deposited, found, deposit, c, key)
        except Exception:  # refused by the write, all or nothing: the app answers it too
            if sent_key is None:
                # Under the key this layer made up, not one of its own: should the write have
                # landed after all (a COMMIT whose answer was lost), the app's is its replay.
                scope["headers"] = [*scope["headers"], (b"idempotency-key", key.encode())]
            return None
        scope.update(child)  # the route, as the request log names it
        response = Response(
            _json(self.route, typed_money(moved, CashMoved)), self.status_code, media_type="application/json"
        )
        response.headers["Idempotency-Key"] = key  # where FastAPI puts a dependency's header: after its own
        return response


class _Received:
    """A request's body read ahead of the app, and a `receive` that gives the app the same messages
    (then the same error, if reading failed), as if it were the first to read them."""

    __slots__ = ("_receive", "_messages", "_error")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: list[Message] = []
        self._error: Exception | None = None

    async def body(self) -> bytes | None:
        chunks = []
        try:
            while True:
                message = await self._receive()
                self._messages.append(message)
                if message["type"] != "http.request":
                    return None
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)
        except Exception as exc:  # the body limit's 413, say: the app meets it where it reads
            self._error = exc
            return None

    async def again(self) -> Message:
        if self._messages:
            return self._messages.pop(0)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return await self._receive()


def _json(route: APIRoute, value: Any) -> bytes:
    # What FastAPI's handler does with an endpoint's return value (fastapi.routing: `dump_json`).
    checked, errors = route.response_field.validate(value, {}, loc=("response",))  # type: ignore[union-attr]
    if errors:
        raise ValueError(f"an answer does not fit its response model: {errors}")
    return route.response_field.serialize_json(  # type: ignore[union-attr]
        checked,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
    )


def _bearer(headers: Headers) -> HTTPAuthorizationCredentials | None:
    """The bearer credentials as fastapi.security.HTTPBearer reads them, or None."""
    authorization = headers.get("authorization")
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not credentials or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


def declared(router: APIRouter, endpoint: Any) -> APIRoute:
    """The route as its router declares it (the app holds its routers as they were included)."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
