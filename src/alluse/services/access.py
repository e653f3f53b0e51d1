"""Who may do what: users (argon2id passwords), roles per portfolio, API keys scoped to portfolios.

A user is a global identity; everything they may do is granted per portfolio (viewer < trader <
owner), except the global admin flag. Grants, revocations and API keys are writes on the portfolios
they concern, so each goes through the unit of work and lands in that portfolio's audit chain.
Creating a user touches no portfolio and is therefore outside every chain (docs/security.md).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NotRequired, TypedDict, TypeVar, cast

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from alluse.domain.access import Role as Role  # re-exported: callers name roles through access
from alluse.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from alluse.store.schema import api_key_scopes, api_keys, portfolio_roles, users
from alluse.store.uow import Request, Tx, validate_key, write, write_connection, write_on, write_system
from alluse.views.access import API_KEY_PREFIX, Principal, _secret_hash, _user_role

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,49}$")
MIN_PASSWORD = 12  # OWASP ASVS 2.1.1
_hasher = PasswordHasher()  # argon2id with the library's recommended cost
# Spent on unknown usernames so a login takes as long whether or not the user exists.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserCreated(TypedDict):
    """A new user, as the system chain's audit entry stores it."""

    user_id: int
    username: str
    is_admin: bool
    replayed: NotRequired[bool]


class User(TypedDict):
    user_id: int
    username: str
    is_admin: bool
    disabled: bool


class UserRole(TypedDict):
    """A role held on a portfolio; a grant's audit entry stores the same."""

    username: str
    role: str
    replayed: NotRequired[bool]


class RoleRevoked(TypedDict):
    username: str
    revoked: str  # the role the user held
    replayed: NotRequired[bool]


class ApiKeyCreated(TypedDict):
    """A new API key, as the audit entry of each portfolio in its scope stores it; `key`, the secret,
    is in the answer to the first request only and never stored."""

    api_key_id: int
    name: str
    scopes: dict[str, str]  # portfolio id → role
    created_at: str
    key: NotRequired[str]
    replayed: NotRequired[bool]


class ApiKey(TypedDict):
    api_key_id: int
    name: str
    created_at: datetime
    revoked: bool
    scopes: dict[str, str]  # portfolio id → role


class ApiKeyRevoked(TypedDict):
    api_key_id: int
    revoked: bool
    replayed: NotRequired[bool]


# --- users ---------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def create_user(engine: Engine, username: str, password: str, *, is_admin: bool = False) -> UserCreated:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidInput("username must be 2–50 characters: a letter, then letters, digits, _ . -")
    pw_hash = hash_password(password)

    def apply(tx: Tx) -> UserCreated:
        if tx.conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
            raise Conflict(f"user {username!r} already exists")
        uid = tx.conn.execute(
            users.insert().values(username=username, password_hash=pw_hash, is_admin=is_admin, created_at=tx.now)
        ).inserted_primary_key[0]  # type: ignore[index]
        return {"user_id": uid, "username": username, "is_admin": is_admin}

    # A user belongs to no portfolio: the system chain records it. The key is new each time, so a
    # second attempt for the same name is refused as a duplicate, not replayed.
    request = Request(f"user.create:{username}:{secrets.token_hex(8)}", {"username": username, "is_admin": is_admin})
    return cast(UserCreated, write_system(engine, "system", "user.create", request, apply))


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(users.c.id, users.c.username, users.c.is_admin, users.c.disabled).order_by(users.c.id)
        )
        return [{"user_id": r.id, "username": r.username, "is_admin": r.is_admin, "disabled": r.disabled} for r in rows]


def login(engine: Engine, username: str, password: str) -> Principal:
    """Check a password; the same error whether the user is unknown, disabled or the password wrong."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.username, users.c.password_hash, users.c.is_admin, users.c.disabled).where(
                users.c.username == username.strip().lower()
            )
        ).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("wrong username or password") from None
    if row is None or row.disabled:
        raise Unauthenticated("wrong username or password")
    return Principal("user", row.id, row.username, row.is_admin, row.id)


def _user_id(conn: sa.Connection, username: str, not_found: str) -> int:
    uid = conn.execute(sa.select(users.c.id).where(users.c.username == username.strip().lower())).scalar()
    if uid is None:
        raise NotFound(not_found)
    return int(uid)


def _known_to(conn: sa.Connection, grantor: Principal, uid: int) -> bool:
    """Whether `grantor` may already know user `uid` exists: an admin knows everyone; anyone else
    knows the users holding a role on a portfolio they own (they see them in its role list)."""
    if grantor.is_admin:
        return True
    mine, theirs = portfolio_roles.alias("mine"), portfolio_roles.alias("theirs")
    q = (
        sa.select(sa.literal(1))
        .select_from(mine.join(theirs, theirs.c.portfolio_id == mine.c.portfolio_id))
        .where(mine.c.user_id == grantor.user_id, mine.c.role == Role.owner.name, theirs.c.user_id == uid)
        .limit(1)
    )
    return conn.execute(q).first() is not None


def grant_role(
    engine: Engine,
    actor: str,
    pid: int,
    username: str,
    role: str,
    key: str,
    *,
    grantor: Principal | None = None,
) -> UserRole:
    """Give a user a role on a portfolio. With `grantor` (an API caller who is not an admin), only a
    user already holding a role on a portfolio the grantor owns can be named, and any other name —
    unknown or existing — gets the same 404, so the call cannot list usernames (docs/security.md).
    The CLI, run by the operator, passes no grantor."""
    wanted = Role.parse(role)
    name = username.strip().lower()
    unknown = f"no user {name!r} among those you can grant roles to (an admin grants a user's first role)"

    def apply(tx: Tx, _reqs: list[Request]) -> list[UserRole]:
        uid = _user_id(tx.conn, username, unknown)
        if grantor is not None and not _known_to(tx.conn, grantor, uid):
            raise NotFound(unknown)
        r = portfolio_roles.c
        tx.conn.execute(portfolio_roles.delete().where(r.portfolio_id == tx.portfolio_id, r.user_id == uid))
        tx.conn.execute(
            portfolio_roles.insert().values(
                portfolio_id=tx.portfolio_id, user_id=uid, role=wanted.name, granted_at=tx.now
            )
        )
        return [{"username": name, "role": wanted.name}]

    payload = {"username": name, "role": wanted.name}
    return cast(UserRole, write(engine, pid, actor, "role.grant", [Request(key, payload)], apply)[0])


def revoke_role(engine: Engine, actor: str, pid: int, username: str, key: str) -> RoleRevoked:
    # The same answer for an unknown user and one without a role here: nothing to learn from it.
    no_role = f"user {username.strip().lower()!r} holds no role on this portfolio"

    def apply(tx: Tx, _reqs: list[Request]) -> list[RoleRevoked]:
        uid = _user_id(tx.conn, username, no_role)
        r = portfolio_roles.c
        held = tx.conn.execute(sa.select(r.role).where(r.portfolio_id == tx.portfolio_id, r.user_id == uid)).scalar()
        if held is None:
            raise NotFound(no_role)
        if held == Role.owner.name:
            owners = tx.conn.execute(
                sa.select(sa.func.count()).where(r.portfolio_id == tx.portfolio_id, r.role == Role.owner.name)
            ).scalar_one()
            if owners == 1:
                raise Conflict("refused: this is the portfolio's last owner; grant another owner first")
        tx.conn.execute(portfolio_roles.delete().where(r.portfolio_id == tx.portfolio_id, r.user_id == uid))
        return [{"username": username.strip().lower(), "revoked": held}]

    payload = {"username": username.strip().lower()}
    return cast(RoleRevoked, write(engine, pid, actor, "role.revoke", [Request(key, payload)], apply)[0])


def list_roles(engine: Engine, pid: int) -> list[UserRole]:
    r, u = portfolio_roles.c, users.c
    with engine.connect() as conn:
        q = (
            sa.select(u.username, r.role)
            .join(users, u.id == r.user_id)
            .where(r.portfolio_id == pid)
            .order_by(u.username)
        )
        return [{"username": x.username, "role": x.role} for x in conn.execute(q)]


# --- API keys ------------------------------------------------------------------------------------


_Result = TypeVar("_Result", bound=Mapping[str, object])


def _on_portfolios(
    engine: Engine,
    pids: list[int],
    actor: str,
    action: str,
    key: str,
    payload: Mapping[str, object],
    first: Callable[[Tx], _Result],
) -> _Result:
    """One write recorded in the audit chain of each portfolio it touches, in one transaction.
    Heads are locked in id order so two such writes cannot deadlock."""
    key = validate_key(key)
    pids = sorted(set(pids))
    result: dict[str, object] = {}  # `first`'s answer, made once and recorded in every chain
    with write_connection(engine) as conn, conn.begin():
        for i, pid in enumerate(pids):

            def apply(tx: Tx, _reqs: list[Request], i: int = i) -> list[_Result]:
                if i == 0:
                    result.update(first(tx))
                return [cast(_Result, result)]

            out = write_on(conn, pid, actor, action, [Request(key, dict(payload))], apply, None)[0]
    return cast(_Result, out)


def create_api_key(engine: Engine, who: Principal, name: str, scopes: list[tuple[int, str]], key: str) -> ApiKeyCreated:
    """A key acting on the given portfolios with the given roles. The secret is in the answer of the
    first request only; a replay of the same idempotency key cannot show it again."""
    if who.kind != "user":
        raise Forbidden("API keys are made by users, not by other API keys")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("an API key needs a name of 1–100 characters")
    if not scopes:
        raise InvalidInput("an API key needs at least one portfolio scope")
    parsed = {pid: Role.parse(role) for pid, role in scopes}
    if len(parsed) != len(scopes):
        raise InvalidInput("each portfolio may appear once in an API key's scopes")
    secret = secrets.token_urlsafe(32)
    issued: list[str] = []  # the key, once this call (not a replay) has made it

    def first(tx: Tx) -> ApiKeyCreated:
        for pid in parsed:
            if _user_role(tx.conn, who.id, who.is_admin, pid) != Role.owner:
                raise Forbidden("only an owner of every portfolio in scope may make an API key for it")
        kid = tx.conn.execute(
            api_keys.insert().values(user_id=who.id, name=name, secret_hash=_secret_hash(secret), created_at=tx.now)
        ).inserted_primary_key[0]  # type: ignore[index]
        tx.conn.execute(
            api_key_scopes.insert(), [{"api_key_id": kid, "portfolio_id": p, "role": r.name} for p, r in parsed.items()]
        )
        issued.append(f"{API_KEY_PREFIX}_{kid}_{secret}")
        return {
            "api_key_id": kid,
            "name": name,
            "scopes": {str(p): r.name for p, r in sorted(parsed.items())},
            "created_at": tx.now.isoformat(),
        }

    payload = {"name": name, "scopes": {str(p): r.name for p, r in sorted(parsed.items())}}
    out = _on_portfolios(engine, list(parsed), who.actor, "apikey.create", key, payload, first)
    return {**out, "key": issued[0]} if issued else out


def list_api_keys(engine: Engine, who: Principal) -> list[ApiKey]:
    k, s = api_keys.c, api_key_scopes.c
    with engine.connect() as conn:
        q = sa.select(k.id, k.name, k.created_at, k.revoked_at)
        if not who.is_admin:
            q = q.where(k.user_id == who.user_id)
        out: list[ApiKey] = []
        for r in conn.execute(q.order_by(k.id)):
            scopes = conn.execute(sa.select(s.portfolio_id, s.role).where(s.api_key_id == r.id)).all()
            out.append(
                {
                    "api_key_id": r.id,
                    "name": r.name,
                    "created_at": r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
                    "revoked": r.revoked_at is not None,
                    "scopes": {str(p): role for p, role in scopes},
                }
            )
        return out


def revoke_api_key(engine: Engine, who: Principal, key_id: int, key: str) -> ApiKeyRevoked:
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys.c.user_id).where(api_keys.c.id == key_id)).first()
        if row is None or (row.user_id != who.user_id and not who.is_admin) or who.kind != "user":
            raise NotFound(f"no API key {key_id} of yours")
        pids = list(
            conn.execute(
                sa.select(api_key_scopes.c.portfolio_id).where(api_key_scopes.c.api_key_id == key_id)
            ).scalars()
        )

    def first(tx: Tx) -> ApiKeyRevoked:
        tx.conn.execute(
            api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=tx.now)
        )
        return {"api_key_id": key_id, "revoked": True}

    return _on_portfolios(engine, pids, who.actor, "apikey.revoke", key, {"api_key_id": key_id}, first)
