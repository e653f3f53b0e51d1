"""Short-lived access tokens and longer refresh tokens: HS256 JWTs signed with a key derived from the
keyring. A token names the user and their token version; bumping the version revokes every token."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

import jwt

from alluse.config import Settings
from alluse.domain.errors import Unauthenticated
from alluse.security.keyring import Keyring

ALGORITHM = "HS256"
ISSUER = "alluse"
VERIFIED_CACHE = 4096  # access tokens per process whose signature and claims were checked once


class TokenPair(TypedDict):
    access_token: str
    refresh_token: str
    token_type: str  # "bearer"
    expires_in: int  # seconds the access token is good for


@dataclass(frozen=True)
class TokenIssuer:
    key: bytes
    access_seconds: int
    refresh_seconds: int
    # token -> (user id, version, exp) of access tokens already verified. A client sends the same token
    # on every request and decoding it costs more than the rest of a read's dependencies; the expiry is
    # still checked on each use, and the version and the user's state are checked against the database
    # by the caller (services/access.py), so a revoked token stops working at once.
    _verified: dict[str, tuple[int, int, int]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, keyring: Keyring) -> TokenIssuer:
        return cls(
            keyring.derive("jwt-signing"), settings.access_token_minutes * 60, settings.refresh_token_hours * 3600
        )

    def _issue(self, user_id: int, version: int, typ: str, ttl: int, jti: str | None = None) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "ver": version, "typ": typ, "iat": now, "exp": now + ttl, "iss": ISSUER}
        if jti is not None:
            claims["jti"] = jti
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def pair(self, user_id: int, version: int, jti: str | None = None) -> TokenPair:
        """An access token and a refresh token; `jti` names the refresh token's row in the
        database (services/sessions.py), which is what makes it single-use."""
        return {
            "access_token": self._issue(user_id, version, "access", self.access_seconds),
            "refresh_token": self._issue(
                user_id, version, "refresh", self.refresh_seconds, jti or secrets.token_hex(16)
            ),
            "token_type": "bearer",
            "expires_in": self.access_seconds,
        }

    def read_refresh(self, token: str) -> tuple[int, int, str]:
        """(user id, token version, token id) of a valid refresh token."""
        claims = self._claims(token, "refresh")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 32:
            raise Unauthenticated("not a refresh token of this server: log in again")
        return int(claims["sub"]), claims["ver"], jti

    def read(self, token: str, typ: str) -> tuple[int, int]:
        """(user id, token version) of a valid token of the given type."""
        if typ == "access":
            known = self._verified.get(token)
            if known is not None:
                if time.time() < known[2]:
                    return known[0], known[1]
                del self._verified[token]
        claims = self._claims(token, typ)
        uid, version = int(claims["sub"]), claims["ver"]
        if typ == "access" and isinstance(claims["exp"], int):
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = (uid, version, claims["exp"])
        return uid, version

    def _claims(self, token: str, typ: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token, self.key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "typ"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired: log in again or use the refresh token") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        if (
            claims.get("typ") != typ
            or not (str(claims["sub"]).isascii() and str(claims["sub"]).isdigit())
            or not isinstance(claims.get("ver"), int)
        ):
            raise Unauthenticated(f"not an {typ} token" if typ == "access" else f"not a {typ} token")
        return claims
