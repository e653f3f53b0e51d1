"""Bodies of the groups routes (api/routers/groups.py)."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from alluse.api.schemas.common import In, Money, Text, no_nul, typed_number
from alluse.domain import parsing

# A group's opening amount: 0 is allowed for a group over three real brokerage accounts.
OpeningAmount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(no_nul),
    typed_number(parsing.parse_money, allow_zero=True),
    Field(description='US dollars, "0" only over three named real brokerage accounts', examples=["250000"]),
]


class GroupIn(In):
    amount: OpeningAmount
    brokerage_accounts: list[Annotated[str, Text(70, 1)]] | None = Field(
        None, max_length=3, description="Gen, Rev, Com in that order, e.g. IBKR:U1234567; default: paper accounts"
    )
    allocation: Annotated[str, Text(40, 1)] | None = Field(None, description="Gen/Rev/Com percentages, e.g. 40/30/30")
    name: Annotated[str, Text(20, 1)] | None = None


class SleeveOpened(BaseModel):
    account_id: int
    name: str
    cash: Money
    brokerage_account: str


class GroupOpenedOut(BaseModel):
    group_id: int
    name: str
    amount: Money
    transfer_id: int | None = Field(None, description="None for a group opened with no capital of its own")
    accounts: dict[str, SleeveOpened]
    replayed: bool = False
