"""Bodies of the accounts routes (api/routers/accounts.py)."""

from pydantic import BaseModel, Field

from alluse.api.schemas.common import Money


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
    parent_group: str | None = Field(None, description="Name of the group this one was forked from.")
    accounts: list[AccountOut]


class TreeOut(BaseModel):
    portfolio_id: int
    portfolio: str
    template: str
    groups: list[GroupOut]
