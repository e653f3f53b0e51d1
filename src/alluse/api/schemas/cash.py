"""Bodies of the cash routes (api/routers/cash.py)."""

from typing import Annotated

from pydantic import BaseModel, Field

from alluse.api.schemas.common import Amount, In, Money, Text


class DepositIn(In):
    to: Annotated[str, Text(100, 1)] = Field(description="A group (split by its allocation) or one account")
    amount: Amount
    group: bool | None = Field(
        None, description="true: `to` is a group; false: an account; absent: an account name wins"
    )
    memo: Annotated[str, Text(200)] = ""


class WithdrawalIn(In):
    account: Annotated[str, Text(100, 1)]
    amount: Amount
    memo: Annotated[str, Text(200)] = ""
    override_reason: Annotated[str, Text(1000, 1)] | None = Field(
        None, description="Owner/admin: let this eat into the cash buffer"
    )


class TransferIn(In):
    from_account: Annotated[str, Text(100, 1)]
    to_account: Annotated[str, Text(100, 1)]
    amount: Amount
    memo: Annotated[str, Text(200)] = ""
    override_reason: Annotated[str, Text(1000, 1)] | None = None


class ReversalIn(In):
    transfer_id: int = Field(ge=1, le=2**62)
    reason: Annotated[str, Text(200, 1)]
    override_reason: Annotated[str, Text(1000, 1)] | None = None


class Leg(BaseModel):
    account: str
    amount: Money


class MoveOut(BaseModel):
    kind: str
    amount: Money
    transfer_id: int
    transfer_number: int | None = Field(None, description="The transfer's number within the portfolio.")
    legs: list[Leg]
    replayed: bool = False


class ReversalOut(BaseModel):
    transfer_id: int
    reverses_transfer_id: int
    transfer_number: int | None = Field(None, description="The reversal's number within the portfolio.")
    reverses_transfer_number: int | None = None
    replayed: bool = False
