"""Bodies of the brokerage routes (api/routers/brokerage.py)."""

from typing import Annotated

from pydantic import BaseModel, Field

from alluse.api.schemas.common import In, Text


class BrokerageIn(In):
    accounts: list[Annotated[str, Text(70, 1)]] = Field(min_length=1, max_length=100, examples=[["IBKR:U1234567"]])


class RegisteredOut(BaseModel):
    registered: list[str]
    replayed: bool = False


class BrokerageOut(BaseModel):
    brokerage_account: str
    mapped_to: str | None
    status: str
    has_credentials: bool


class CredentialsIn(In):
    credentials: Annotated[str, Text(10_000, 1)] = Field(description="Stored encrypted; never returned")


class CredentialsOut(BaseModel):
    brokerage_account: str
    credentials: str
    replayed: bool = False
