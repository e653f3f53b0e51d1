"""Bodies of the trades routes (api/routers/trades.py)."""

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from alluse.api.schemas.common import Amount, Day, In, Money, Text, no_nul, typed_number
from alluse.domain import parsing

# Shares or contracts: a JSON integer, or a string in the typed form ("1,000").
Quantity = Annotated[int, typed_number(parsing.parse_quantity, keep_text=False, allow_zero=True)]


Price = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(no_nul),
    typed_number(parsing.parse_price),
    Field(
        description='Per share, a decimal string with at most 4 decimals: "1.25"',
        examples=["1.25"],
        json_schema_extra={"pattern": r"^\$?([0-9]{1,3}(,[0-9]{3}){1,2}|[0-9]{1,7})(\.[0-9]{1,4})?$"},
    ),
]


Symbol = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(no_nul),
    Field(description="A ticker or an OCC option symbol", examples=["AAPL  251219P00180000"]),
]


Action = Literal["BTO", "STO", "BTC", "STC", "EXPIRE", "ASSIGN", "DIVIDEND", "FEE"]


class FillIn(In):
    account: Annotated[str, Text(100, 1)] = Field(description="Account name (e.g. A1-GEN) or id")
    action: Action
    symbol: Symbol | None = Field(None, description="Needed by every action but FEE (and DIVIDEND, where optional)")
    quantity: Quantity = Field(0, ge=0, le=10**9, description="Shares or contracts; 0 for DIVIDEND and FEE")
    price: Price = "0"
    commission: Amount | None = Field(None, description="Commissions and fees, USD")
    amount: Amount | None = Field(None, description="The cash of a DIVIDEND or FEE, USD")
    trade_date: Day | None = Field(None, description="Needed except for an EXPIRE (default: the option's expiry)")
    multiplier: int = Field(100, ge=1, le=10_000)


class BatchFillIn(FillIn):
    key: Annotated[str, Text(200, 1)] | None = Field(
        None, description="This fact's idempotency key (default: the request's key + '#' + its position)"
    )


class FillBatchIn(In):
    fills: list[BatchFillIn] = Field(min_length=1, max_length=10_000)


class FillOut(BaseModel):
    fill_id: int
    account: str
    action: str
    symbol: str | None
    quantity: int
    cash: Money
    realized: Money
    trade_date: date
    buffer_breach: bool
    replayed: bool = False


class FillBatchOut(BaseModel):
    recorded: int
    replayed: int
    fills: list[FillOut]


class MarksIn(In):
    prices: dict[Symbol, Price] = Field(min_length=1, max_length=10_000, examples=[{"AAPL": "187.25"}])
    as_of: Day | None = Field(None, description="Default: today")


class MarksOut(BaseModel):
    as_of: date
    marks: int
    positions_revalued: int
    buffer_breach: list[str]
    replayed: bool = False


class LotOut(BaseModel):
    lot_id: int
    symbol: str
    side: str
    opened_on: date
    quantity: int
    basis: Money
    price: str = Field(description="The position's latest price per share")
    value: Money
    unrealized: Money
    term: str


class HoldingOut(BaseModel):
    account: str
    cash: Money
    positions_value: Money
    nav: Money
    collateral: Money
    unrealized: Money
    lots: list[LotOut]


class PositionsOut(BaseModel):
    as_of: date
    accounts: list[HoldingOut]


class AlertOut(BaseModel):
    id: int
    name: str = Field(description="The account")
    kind: str
    message: str
    raised_at: datetime


class CheckTradeIn(In):
    account: Annotated[str, Text(100, 1)]
    action: Literal["BTO", "STO", "BTC", "STC"]
    symbol: Symbol
    quantity: Quantity = Field(ge=1, le=10**9)
    price: Price = "0"
    delta: Annotated[str, typed_number(parsing.parse_delta, signed=True)] | None = Field(
        None,
        max_length=20,
        description="Option delta, -1 to 1; the sign is ignored",
        examples=["0.30"],
        json_schema_extra={"pattern": r"^-?(0|1|[01]\.0{1,4}|0?\.[0-9]{1,4})$"},
    )
    on: Day | None = Field(None, description="Entry day (default: today)")


class CheckTradeOut(BaseModel):
    account: str
    order: str
    ok: bool = Field(description="false: the intent violates a rule of the method (see violations)")
    violations: list[str]
    warnings: list[str]
