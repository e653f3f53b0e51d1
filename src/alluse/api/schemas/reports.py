"""Bodies of the reports routes (api/routers/reports.py)."""

from datetime import date

from pydantic import BaseModel, Field

from alluse.api.schemas.common import Money, TaxNote


class WeekRow(BaseModel):
    week_start: date
    trades: int
    income: Money
    predicted: str | None
    confirmed: str | None
    correct: bool | None


class WeeklyOut(BaseModel):
    weeks: list[WeekRow]
    predicted_and_confirmed: int
    correct: int


class MonthRow(BaseModel):
    month: str
    income: Money
    reinvested: Money
    estimated_tax: Money
    growth: dict[str, Money] = Field(description="Per account: NAV change less flows")


class MonthlyOut(BaseModel):
    year: int
    months: list[MonthRow]
    tax_estimated_ytd: Money
    note: TaxNote


class QuarterRow(BaseModel):
    quarter: str
    account: str
    short_term: Money
    long_term: Money
    dividends: Money
    net_realized: Money
    estimated_tax_ytd: Money


class QuarterlyOut(BaseModel):
    year: int
    rows: list[QuarterRow]
    note: TaxNote
    not_built: str


class TermTotals(BaseModel):
    gains: Money
    losses: Money
    net: Money | None = Field(None, description="gains + losses")
    closes: int


class WashSales(BaseModel):
    closes: int
    loss: Money


class TaxAccountRow(BaseModel):
    account: str
    short_term: Money
    long_term: Money
    dividends: Money
    estimated_tax: Money
    paid: Money


class TaxYearOut(BaseModel):
    year: int
    note: TaxNote
    rates_bps: dict[str, int]
    short_term: TermTotals
    long_term: TermTotals
    dividends: Money
    taxable_short_term: Money
    taxable_long_term: Money
    net_capital_loss: Money
    estimated_tax: Money
    paid: Money
    unpaid: Money
    wash_sale_flagged: WashSales
    accounts: list[TaxAccountRow]


class RealizedRow(BaseModel):
    account: str
    symbol: str
    side: str
    quantity: int
    date_acquired: date
    date_sold: date
    proceeds: Money
    cost_basis: Money
    gain: Money
    term: str
    wash_sale_flag: str
    lot_id: int
    fill_id: int
    note: TaxNote


class NavDay(BaseModel):
    on: date
    nav: Money
    flow: Money


class PerformanceRow(BaseModel):
    account: str
    start_nav: Money
    end_nav: Money
    flows: Money
    twr: str = Field(description="Time-weighted return as a decimal fraction (0.0123 = 1.23 %)")
    max_drawdown: str = Field(description="As a decimal fraction")
    series: list[NavDay]


class PerformanceOut(BaseModel):
    start: date
    end: date
    accounts: list[PerformanceRow]
