"""Bodies of the tax routes (api/routers/tax.py)."""

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from alluse.api.schemas.common import Amount, Day, In, Money, TaxNote, Text, Year, no_nul, typed_number
from alluse.domain import parsing


class TaxPaymentIn(In):
    account: Annotated[str, Text(100, 1)]
    tax_year: Year
    amount: Amount
    paid_on: Day | None = Field(None, description="Default: today")


class TaxPaymentOut(BaseModel):
    account: str
    tax_year: int
    amount: Money
    transfer_id: int
    buffer_breach: bool
    replayed: bool = False


Pct = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10),
    AfterValidator(no_nul),
    typed_number(parsing.parse_percent),
    Field(
        description="A percentage from 0 to 100, at most two decimals",
        examples=["30"],
        json_schema_extra={"pattern": r"^([0-9]{1,2}(\.[0-9]{1,2})?|100(\.0{1,2})?)%?$"},
    ),
]


class TaxRatesIn(In):
    short_term: Pct
    long_term: Pct
    dividend: Pct


class TaxRatesOut(BaseModel):
    short_term_bps: int
    long_term_bps: int
    dividend_bps: int
    replayed: bool = False


class SurplusOut(BaseModel):
    account: str
    as_of: date
    nav: Money
    base_capital: Money
    unpaid_tax_on_realized: Money
    tax_on_unrealized: Money
    post_tax_surplus: Money
    note: TaxNote


class PnlOut(BaseModel):
    account: str
    start: date
    end: date
    realized: Money = Field(description="Net realized capital gain (commissions inside)")
    dividends: Money
    fees: Money = Field(description="Standalone fees")
    pre_tax: Money
    estimated_tax: Money
    post_tax: Money
    note: TaxNote
