"""Request and response bodies, at the edge only: services take and return plain values.

Amounts travel as decimal strings ("1250.50"): parsed with domain/money.parse_usd on the way in,
and written from integer cents, exactly, on the way out (`*_cents` fields lose the suffix).
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads as a type in models
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(_no_nul)]


Amount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_no_nul),
    Field(
        description='US dollars as a decimal string, at most two decimals: "1250" or "1250.50"', examples=["1250.50"]
    ),
]
Money = Annotated[str, Field(description="US dollars, exact, as a decimal string", examples=["1250.50"])]


def usd(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def money(value: Any) -> Any:
    """Integer-cent fields of a service result as decimal-string dollars, recursively."""
    if isinstance(value, dict):
        return {
            (k[: -len("_cents")] if k.endswith("_cents") else k): (
                usd(v) if k.endswith("_cents") and isinstance(v, int) else money(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [money(v) for v in value]
    return value


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- auth ---------------------------------------------------------------------------------------


class LoginIn(In):
    username: Text(50, 1)
    password: Text(200, 1)


class RefreshIn(In):
    refresh_token: Text(2000, 1)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class PortfolioRole(BaseModel):
    portfolio_id: int
    name: str
    role: str


class MeOut(BaseModel):
    actor: str
    kind: str
    is_admin: bool
    portfolios: list[PortfolioRole]


class UserIn(In):
    username: Text(50, 1)
    password: Text(200, 1)
    is_admin: bool = False


class UserOut(BaseModel):
    user_id: int
    username: str
    is_admin: bool
    disabled: bool = False


class RoleIn(In):
    role: Text(10, 1) = Field(description="viewer, trader or owner")


class RoleOut(BaseModel):
    username: str
    role: str | None = None
    revoked: str | None = None
    replayed: bool = False


class ApiKeyScopeIn(In):
    portfolio: Text(100, 1) = Field(description="Portfolio id or name")
    role: Text(10, 1)


class ApiKeyIn(In):
    name: Text(100, 1)
    scopes: list[ApiKeyScopeIn] = Field(min_length=1, max_length=50)


class ApiKeyOut(BaseModel):
    api_key_id: int
    name: str | None = None
    scopes: dict[str, str] = {}
    key: str | None = Field(None, description="The secret, shown once: in the answer to the first request only")
    created_at: datetime | None = None
    revoked: bool = False
    replayed: bool = False


# --- portfolios, accounts, groups --------------------------------------------------------------


class PortfolioIn(In):
    name: Text(100, 1)
    template: Text(20, 1) = "moderate"


class PortfolioOut(BaseModel):
    portfolio_id: int
    name: str
    template: str | None = None
    replayed: bool = False


class AccountOut(BaseModel):
    account_id: int
    name: str
    kind: str
    label: str
    group: str | None = None
    status: str
    cash: Money
    nav: Money
    buffer_bps: int
    cash_buffer: Money
    deployable: Money
    base_capital: Money
    buffer_breach: bool
    brokerage_account: str | None


class GroupOut(BaseModel):
    group_id: int
    name: str
    kind: str
    status: str
    parent_group_id: int | None
    accounts: list[AccountOut]


class TreeOut(BaseModel):
    portfolio_id: int
    portfolio: str
    template: str
    groups: list[GroupOut]


class GroupIn(In):
    amount: Amount
    brokerage_accounts: list[Text(70, 1)] | None = Field(
        None, max_length=3, description="Gen, Rev, Com in that order, e.g. IBKR:U1234567; default: paper accounts"
    )
    allocation: Text(40, 1) | None = Field(None, description="Gen/Rev/Com percentages, e.g. 40/30/30")
    name: Text(20, 1) | None = None


class SleeveOpened(BaseModel):
    account_id: int
    name: str
    cash: Money
    brokerage_account: str


class GroupOpenedOut(BaseModel):
    group_id: int
    name: str
    amount: Money
    transfer_id: int
    accounts: dict[str, SleeveOpened]
    replayed: bool = False


# --- cash ---------------------------------------------------------------------------------------


class DepositIn(In):
    to: Text(100, 1) = Field(description="A group (split by its allocation) or one account")
    amount: Amount
    group: bool | None = Field(
        None, description="true: `to` is a group; false: an account; absent: an account name wins"
    )
    memo: Text(200) = ""


class WithdrawalIn(In):
    account: Text(100, 1)
    amount: Amount
    memo: Text(200) = ""
    override_reason: Text(1000, 1) | None = Field(None, description="Owner/admin: let this eat into the cash buffer")


class TransferIn(In):
    from_account: Text(100, 1)
    to_account: Text(100, 1)
    amount: Amount
    memo: Text(200) = ""
    override_reason: Text(1000, 1) | None = None


class ReversalIn(In):
    transfer_id: int = Field(ge=1, le=2**62)
    reason: Text(200, 1)
    override_reason: Text(1000, 1) | None = None


class Leg(BaseModel):
    account: str
    amount: Money


class MoveOut(BaseModel):
    kind: str
    amount: Money
    transfer_id: int
    legs: list[Leg]
    replayed: bool = False


class ReversalOut(BaseModel):
    transfer_id: int
    reverses_transfer_id: int
    replayed: bool = False


# --- brokerage, configuration, audit ------------------------------------------------------------


class BrokerageIn(In):
    accounts: list[Text(70, 1)] = Field(min_length=1, max_length=100, examples=[["IBKR:U1234567"]])


class RegisteredOut(BaseModel):
    registered: list[str]
    replayed: bool = False


class BrokerageOut(BaseModel):
    brokerage_account: str
    mapped_to: str | None
    status: str
    has_credentials: bool


class CredentialsIn(In):
    credentials: Text(10_000, 1) = Field(description="Stored encrypted; never returned")


class CredentialsOut(BaseModel):
    brokerage_account: str
    credentials: str
    replayed: bool = False


class ConfigIn(In):
    key: Text(50, 1) = Field(description="e.g. delta_min, entry_days, buffer_pct, template, allocation")
    value: Text(100, 1)


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    idempotency_key: str
    result: Any
    override_reason: str | None
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    problems: list[str]
    counts: dict[str, int]


class HealthOut(BaseModel):
    status: str
    schema_revision: str | None = None
