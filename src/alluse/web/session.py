"""Browser sessions: a signed cookie naming the user, a CSRF token on every form, and the portfolio
scope of a page — the same users, roles and portfolio isolation as the API (`api/deps.py`).

The session cookie is an HS256 token signed with its own key derived from the keyring (never valid
as an API bearer token), HttpOnly, SameSite=Strict, and Secure when the page is served over TLS. It
names the user and their token version, so bumping the version (a password change, `revoke all`)
ends browser sessions as well. Every POST carries a CSRF token: before login a random value that must
equal the `alluse_csrf` cookie (double submit), after login an HMAC of the session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt
from fastapi import Request, Response

from alluse.api.deps import Context
from alluse.domain.errors import Forbidden, NotFound, Unauthenticated
from alluse.services import dashboard
from alluse.views import access
from alluse.views.access import Principal, Role, user_principal

SESSION_COOKIE = "alluse_session"
CSRF_COOKIE = "alluse_csrf"
CSRF_FIELD = "csrf_token"
ALGORITHM = "HS256"


class CsrfRefused(Forbidden):
    """A form posted without its CSRF token (or with another session's)."""


def ctx(request: Request) -> Context:
    return request.app.state.ctx


def _key(c: Context, purpose: str) -> bytes:
    return c.keyring.derive(f"web-{purpose}")


def issue(c: Context, user_id: int, version: int) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "ver": version, "typ": "session", "iat": now}
    claims["exp"] = now + c.settings.refresh_token_hours * 3600
    return jwt.encode(claims, _key(c, "session"), algorithm=ALGORITHM)


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx(request).settings.refresh_token_hours * 3600,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def current_user(request: Request) -> Principal:
    """The logged-in user, or Unauthenticated (the pages turn that into a redirect to /login)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthenticated("log in first")
    c = ctx(request)
    try:
        claims = jwt.decode(token, _key(c, "session"), algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        raise Unauthenticated("your session has ended: log in again") from None
    if claims.get("typ") != "session" or not str(claims["sub"]).isdigit() or not isinstance(claims.get("ver"), int):
        raise Unauthenticated("your session has ended: log in again")
    with c.engine.connect() as conn:
        who = user_principal(conn, int(claims["sub"]), claims["ver"])
    request.state.actor = who.actor
    return who


# --- CSRF ----------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The token every form of this page carries."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return hmac.new(_key(ctx(request), "csrf"), session.encode(), hashlib.sha256).hexdigest()
    pre = getattr(request.state, "csrf_cookie", None) or request.cookies.get(CSRF_COOKIE)
    if not pre or len(pre) > 100:
        pre = secrets.token_urlsafe(24)
        request.state.csrf_cookie = pre  # the response sets it (`remember_csrf`)
    return pre


def remember_csrf(request: Request, response: Response) -> None:
    fresh = getattr(request.state, "csrf_cookie", None)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE, fresh, httponly=True, secure=request.url.scheme == "https", samesite="strict", path="/"
        )


def check_csrf(request: Request, sent: str | None) -> None:
    expected = csrf_token(request)
    if getattr(request.state, "csrf_cookie", None) or not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRefused("this form has expired or did not come from this site: reload the page and try again")


# --- portfolio scope -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageScope:
    principal: Principal
    portfolio_id: int
    portfolio: str
    role: Role

    @property
    def actor(self) -> str:
        return self.principal.actor

    def can(self, role: Role) -> bool:
        return self.role >= role


def portfolio_scope(request: Request, portfolio: str, least: Role = Role.viewer) -> PageScope:
    """As the API's `portfolio_scope`: the same 'not found' for a missing portfolio and one you hold no
    role on, and Forbidden when your role is below what the page or action needs."""
    who = current_user(request)
    c = ctx(request)
    found = access.portfolio_role(c.engine, who, portfolio)
    if found is None:
        raise NotFound(f"no portfolio {portfolio!r} you have access to")
    pid, role = found
    if role < least:
        raise Forbidden(f"{least.name} role needed on this portfolio (you hold {role.name})")
    return PageScope(who, pid, dashboard.portfolio_name(c.engine, pid), role)
