"""Bodies of the auth routes (api/routers/auth.py)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from alluse.api.schemas.common import In, Text
from alluse.api.schemas.portfolios import PortfolioRole


class LoginIn(In):
    username: Annotated[str, Text(50, 1)]
    password: Annotated[str, Text(200, 1)]


class RefreshIn(In):
    refresh_token: Annotated[str, Text(2000, 1)]


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class MeOut(BaseModel):
    actor: str
    kind: str
    is_admin: bool
    portfolios: list[PortfolioRole]


class UserIn(In):
    username: Annotated[str, Text(50, 1)]
    password: Annotated[str, Text(200, 1)]
    is_admin: bool = False


class UserOut(BaseModel):
    user_id: int
    username: str
    is_admin: bool
    disabled: bool = False


class RoleIn(In):
    role: Annotated[str, Text(10, 1)] = Field(description="viewer, trader or owner")


class RoleOut(BaseModel):
    username: str
    role: str | None = None
    revoked: str | None = None
    replayed: bool = False


class ApiKeyScopeIn(In):
    portfolio: Annotated[str, Text(100, 1)] = Field(description="Portfolio id or name")
    role: Annotated[str, Text(10, 1)]


class ApiKeyIn(In):
    name: Annotated[str, Text(100, 1)]
    scopes: list[ApiKeyScopeIn] = Field(min_length=1, max_length=50)


class ApiKeyOut(BaseModel):
    api_key_id: int
    name: str | None = None
    scopes: dict[str, str] = {}
    key: str | None = Field(None, description="The secret, shown once: in the answer to the first request only")
    created_at: datetime | None = None
    revoked: bool = False
    replayed: bool = False
