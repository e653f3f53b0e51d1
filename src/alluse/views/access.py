"""Who is calling and what they may see: the principal behind a token or an API key, their role on a
portfolio, the portfolios they can open. Reads only; the writes (users, grants, keys) are
`services/access.py`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.access import Role as Role  # re-exported: the pages and the API name roles through access
from alluse.domain.errors import NotFound, Unauthenticated
from alluse.store.prepared import Prepared
from alluse.store.schema import api_key_scopes, api_keys, portfolio_roles, portfolios, users
from alluse.store.scope import scope_to

API_KEY_PREFIX = "alk"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, or an API key acting within its scopes."""

    kind: str  # "user" | "apikey"
    id: int
    name: str
    is_admin: bool = False
    user_id: int = 0  # for a key: the user who created it

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"user:{self.name}" if self.kind == "user" else f"apikey:{self.id}"


_USER_BY_ID = Prepared(
    sa.select(users.c.username, users.c.is_admin, users.c.token_version, users.c.disabled).where(
        users.c.id == sa.bindparam("uid")
    )
)


def user_principal(conn: sa.Connection, user_id: int, token_version: int) -> Principal:
    """The user a token names, if the token is still valid for them (not disabled, version current)."""
    row = _USER_BY_ID.first(conn, uid=user_id)
    if row is None or row[3] or row[2] != token_version:
        raise Unauthenticated("token no longer valid: log in again")
    return Principal("user", user_id, row[0], bool(row[1]), user_id)


def token_version(conn: sa.Connection, user_id: int) -> int:
    row = _USER_BY_ID.first(conn, uid=user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    return int(row[2])


# --- roles ---------------------------------------------------------------------------------------

_ROLE_OF_USER = Prepared(
    sa.select(portfolio_roles.c.role).where(
        portfolio_roles.c.portfolio_id == sa.bindparam("pid"), portfolio_roles.c.user_id == sa.bindparam("uid")
    )
)
_ROLE_OF_KEY = Prepared(
    sa.select(api_key_scopes.c.role).where(
        api_key_scopes.c.portfolio_id == sa.bindparam("pid"), api_key_scopes.c.api_key_id == sa.bindparam("kid")
    )
)
_PORTFOLIO_BY_NAME = Prepared(sa.select(portfolios.c.id).where(portfolios.c.name == sa.bindparam("name")))
_PORTFOLIO_BY_ID = Prepared(sa.select(portfolios.c.id).where(portfolios.c.id == sa.bindparam("pid")))


def _user_role(conn: sa.Connection, user_id: int, is_admin: bool, pid: int) -> Role | None:
    if is_admin:
        return Role.owner
    found = _ROLE_OF_USER.first(conn, pid=pid, uid=user_id)
    return Role[found[0]] if found else None


def role_on(conn: sa.Connection, who: Principal, pid: int) -> Role | None:
    """The role `who` holds on portfolio `pid`. A key never holds more than its creator does now, so
    taking a role away from a user also takes it from the keys they made."""
    if who.kind == "user":
        return _user_role(conn, who.id, who.is_admin, pid)
    scoped = _ROLE_OF_KEY.first(conn, pid=pid, kid=who.id)
    if scoped is None:
        return None
    creator = _USER_BY_ID.first(conn, uid=who.user_id)
    if creator is None or creator[3]:
        return None
    held = _user_role(conn, who.user_id, bool(creator[1]), pid)
    return min(Role[scoped[0]], held) if held else None


def portfolio_id_for(conn: sa.Connection, ref: str) -> int | None:
    """A portfolio named by id or name, or None: callers answer 'not found' for both a missing
    portfolio and one the caller holds no role on, so existence does not leak."""
    text = ref.strip()
    # ASCII digits only: "²".isdigit() is true, but int() refuses it.
    row = _PORTFOLIO_BY_ID.first(conn, pid=int(text)) if text.isascii() and text.isdigit() and len(text) < 19 else None
    row = row or _PORTFOLIO_BY_NAME.first(conn, name=text)
    return int(row[0]) if row else None


class VisiblePortfolio(TypedDict):
    portfolio_id: int
    name: str
    role: str  # the role the caller holds on it


def visible_portfolios(engine: Engine, who: Principal) -> list[VisiblePortfolio]:
    p = portfolios.c
    with engine.connect() as conn:
        if who.kind == "user" and who.is_admin:
            rows = [(r.id, r.name, "owner") for r in conn.execute(sa.select(p.id, p.name).order_by(p.id))]
        else:
            scope = api_key_scopes if who.kind == "apikey" else portfolio_roles
            owner_col = scope.c.api_key_id if who.kind == "apikey" else scope.c.user_id
            q = sa.select(p.id, p.name).join(scope, scope.c.portfolio_id == p.id).where(owner_col == who.id)
            rows = []
            for r in conn.execute(q.order_by(p.id)):
                role = role_on(conn, who, r.id)
                if role is not None:
                    rows.append((r.id, r.name, role.name))
    return [{"portfolio_id": i, "name": n, "role": r} for i, n, r in rows]


def portfolio_role(engine: Engine, who: Principal, ref: str) -> tuple[int, Role] | None:
    """The portfolio `ref` names and the role `who` holds on it, or None for a portfolio that does not
    exist and for one they hold no role on alike (existence does not leak)."""
    with engine.connect() as conn:
        return portfolio_role_in(conn, who, ref)


def portfolio_role_in(conn: sa.Connection, who: Principal, ref: str) -> tuple[int, Role] | None:
    """`portfolio_role` on a connection the caller holds, whose transaction is then scoped to the
    portfolio (row-level security on PostgreSQL)."""
    if "\x00" in ref or len(ref) > 100:
        return None
    pid = portfolio_id_for(conn, ref)
    if pid is None:
        return None
    scope_to(conn, pid)
    role = role_on(conn, who, pid)
    return (pid, role) if role is not None else None


def _secret_hash(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


_KEY_BY_ID = Prepared(
    sa.select(api_keys.c.user_id, api_keys.c.secret_hash, api_keys.c.revoked_at).where(
        api_keys.c.id == sa.bindparam("kid")
    )
)


def api_key_principal(conn: sa.Connection, token: str) -> Principal:
    parts = token.split("_", 2)
    if (
        len(parts) != 3
        or parts[0] != API_KEY_PREFIX
        or not (parts[1].isascii() and parts[1].isdigit())
        or len(parts[1]) > 18
    ):
        raise Unauthenticated("malformed API key")
    kid = int(parts[1])
    row = _KEY_BY_ID.first(conn, kid=kid)
    if row is None or row[2] is not None or not hmac.compare_digest(row[1], _secret_hash(parts[2])):
        raise Unauthenticated("unknown or revoked API key")
    return Principal("apikey", kid, f"apikey:{kid}", False, int(row[0]))
