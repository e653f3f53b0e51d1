"""Sessions: refresh-token rotation with reuse detection, logout, signing out everywhere, and
password changes.

Every refresh token has a row (`refresh_tokens`) and belongs to a family started by one login. A
refresh uses its token up (one conditional UPDATE, so two racing refreshes cannot both win) and
issues the next token of the family. Presenting a token that was already used or revoked means a
copy is in someone else's hands: the whole family is revoked, and both holders must log in again.

Signing out everywhere and any password change raise the user's `token_version`, which voids every
access and refresh token issued before; the refresh rows are revoked too. Users touch no
portfolio, so these writes are outside every audit chain, like creating a user (docs/security.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.errors import NotFound, Unauthenticated
from alluse.security.tokens import TokenIssuer, TokenPair
from alluse.services import access
from alluse.store.db import writer_lock
from alluse.store.schema import refresh_tokens, users
from alluse.store.uow import write_connection
from alluse.views.access import Principal, token_version, user_principal

R = refresh_tokens.c


@dataclass(frozen=True, slots=True)
class PasswordSet:
    username: str
    tokens_revoked: bool  # every token the user held is void


def _issue(conn: sa.Connection, issuer: TokenIssuer, user_id: int, version: int, family: str) -> TokenPair:
    now = datetime.now(UTC)
    jti = secrets.token_hex(16)
    conn.execute(
        refresh_tokens.insert().values(
            jti=jti,
            family=family,
            user_id=user_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=issuer.refresh_seconds),
        )
    )
    return issuer.pair(user_id, version, jti)


def start(engine: Engine, issuer: TokenIssuer, who: Principal) -> TokenPair:
    """A token pair for a user who just proved their password: the first of a new family."""
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        # Rows of this user's expired tokens go here: nothing can present those any more.
        conn.execute(refresh_tokens.delete().where(R.user_id == who.id, R.expires_at < datetime.now(UTC)))
        version = token_version(conn, who.id)
        return _issue(conn, issuer, who.id, version, secrets.token_hex(16))


def refresh(engine: Engine, issuer: TokenIssuer, token: str) -> TokenPair:
    """The next token pair of the family, using the presented refresh token up."""
    uid, version, jti = issuer.read_refresh(token)
    now = datetime.now(UTC)
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        row = conn.execute(sa.select(R.family, R.user_id).where(R.jti == jti)).first()
        if row is None or row.user_id != uid:
            raise Unauthenticated("unknown refresh token: log in again")
        claimed = conn.execute(
            refresh_tokens.update().where(R.jti == jti, R.used_at.is_(None), R.revoked_at.is_(None)).values(used_at=now)
        ).rowcount
        if claimed == 1:
            user_principal(conn, uid, version)  # still active, version still current
            return _issue(conn, issuer, uid, version, row.family)
        # Used or revoked before: a copy of this token is abroad. Revoke the family (committed here).
        conn.execute(
            refresh_tokens.update().where(R.family == row.family, R.revoked_at.is_(None)).values(revoked_at=now)
        )
    raise Unauthenticated("refresh token already used: every session of this login is revoked, log in again")


def logout(engine: Engine, issuer: TokenIssuer, token: str) -> None:
    """Revoke the refresh token's family. Access tokens already issued run out on their own
    (`ALLUSE_ACCESS_TOKEN_MINUTES`); signing out everywhere voids them at once."""
    uid, _version, jti = issuer.read_refresh(token)
    now = datetime.now(UTC)
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        family = conn.execute(sa.select(R.family).where(R.jti == jti, R.user_id == uid)).scalar()
        if family is None:
            raise Unauthenticated("unknown refresh token")
        conn.execute(refresh_tokens.update().where(R.family == family, R.revoked_at.is_(None)).values(revoked_at=now))


def _revoke_all(conn: sa.Connection, user_id: int) -> None:
    conn.execute(users.update().where(users.c.id == user_id).values(token_version=users.c.token_version + 1))
    conn.execute(
        refresh_tokens.update().where(R.user_id == user_id, R.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))
    )


def sign_out_everywhere(engine: Engine, user_id: int) -> None:
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        _revoke_all(conn, user_id)


def change_password(engine: Engine, who: Principal, current: str, new: str) -> None:
    """The user's own change: the current password first (the same check and error as a login)."""
    access.login(engine, who.name, current)
    set_password(engine, who.name, new)


def set_password(engine: Engine, username: str, new: str) -> PasswordSet:
    """Set a password (an admin's reset, or the user's change) and void every token of the user."""
    pw_hash = access.hash_password(new)
    name = username.strip().lower()
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == name)).scalar()
        if uid is None:
            raise NotFound(f"no user {name!r}")
        conn.execute(users.update().where(users.c.id == uid).values(password_hash=pw_hash))
        _revoke_all(conn, uid)
    return PasswordSet(name, tokens_revoked=True)
