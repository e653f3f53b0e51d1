"""Request and response bodies, at the edge only: services take and return plain values.

Amounts travel as decimal strings ("1250.50"): checked by domain/parsing (the one parser for typed
numbers) on the way in, and written from integer cents, exactly, on the way out (`*_cents` fields lose
the suffix). JSON numbers are refused for money, prices, percentages and deltas: a JSON reader turns
them into binary floats before any code sees the digits that were sent.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from alluse.domain import parsing
from alluse.domain.errors import InvalidNumber


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads as a type in models
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(_no_nul)]


def _typed_number(parse: Any, *, keep_text: bool = True, **options: Any) -> BeforeValidator:
    """Checks a typed number with its domain/parsing function; passes on the text unchanged (services
    parse it again, with the same function) or, with keep_text=False, the parsed value."""

    def check(value: Any, info: ValidationInfo) -> Any:
        field = info.field_name or "value"
        try:
            parsed = parse(value, field=field, **options)
        except InvalidNumber as exc:
            # The problem's location already names the field (and the key, inside a mapping).
            raise PydanticCustomError("invalid_number", f"{exc.problem}; expected {exc.form}") from None
        return value if keep_text else parsed

    return BeforeValidator(check)


# Shares or contracts: a JSON integer, or a string in the typed form ("1,000").
Quantity = Annotated[int, _typed_number(parsing.parse_quantity, keep_text=False, allow_zero=True)]


# The patterns document the typed forms in the OpenAPI schema (and steer generated requests); the
# validators, which call domain/parsing, are what decides.
Amount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_no_nul),
    _typed_number(parsing.parse_money),
    Field(
        description='US dollars as a decimal string, at most two decimals: "1250", "1,250.50" or "$1250.50"',
        examples=["1250.50"],
        json_schema_extra={"pattern": r"^\$?([0-9]{1,3}(,[0-9]{3}){1,3}|[0-9]{1,12})(\.[0-9]{1,2})?$"},
    ),
]
# A group's opening amount: 0 is allowed for a group over three real brokerage accounts.
OpeningAmount = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_no_nul),
    _typed_number(parsing.parse_money, allow_zero=True),
    Field(description='US dollars, "0" only over three named real brokerage accounts', examples=["250000"]),
]
Money = Annotated[str, Field(description="US dollars, exact, as a decimal string", examples=["1250.50"])]


def usd(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def money(value: Any) -> Any:
    """Integer-cent fields of a service result as decimal-string dollars, recursively."""
    if isinstance(value, dict):
        return {
            (k[: -len("_cents")] if k.endswith("_cents") else k): (
                usd(v) if k.endswith("_cents") and isinstance(v, int | Decimal) else money(v)
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
    parent_group: str | None = Field(None, description="Name of the group this one was forked from.")
    accounts: list[AccountOut]


class TreeOut(BaseModel):
    portfolio_id: int
    portfolio: str
    template: str
    groups: list[GroupOut]


class GroupIn(In):
    amount: OpeningAmount
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
    transfer_id: int | None = Field(None, description="None for a group opened with no capital of its own")
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
    transfer_number: int | None = Field(None, description="The transfer's number within the portfolio.")
    legs: list[Leg]
    replayed: bool = False


class ReversalOut(BaseModel):
    transfer_id: int
    reverses_transfer_id: int
    transfer_number: int | None = Field(None, description="The reversal's number within the portfolio.")
    reverses_transfer_number: int | None = None
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


# --- trades, marks, positions, alerts, protocol check, weeks, tax -------------------------------

# Dates the ledger can hold; the bounds keep date arithmetic (week starts, report windows) in range.
Day = Annotated[date, Field(ge=date(1900, 1, 2), le=date(2999, 12, 31), examples=["2026-03-20"])]
Year = Annotated[int, Field(ge=1901, le=2999)]
Price = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_no_nul),
    _typed_number(parsing.parse_price),
    Field(
        description='Per share, a decimal string with at most 4 decimals: "1.25"',
        examples=["1.25"],
        json_schema_extra={"pattern": r"^\$?([0-9]{1,3}(,[0-9]{3}){1,2}|[0-9]{1,7})(\.[0-9]{1,4})?$"},
    ),
]
Symbol = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_no_nul),
    Field(description="A ticker or an OCC option symbol", examples=["AAPL  251219P00180000"]),
]
Action = Literal["BTO", "STO", "BTC", "STC", "EXPIRE", "ASSIGN", "DIVIDEND", "FEE"]


class FillIn(In):
    account: Text(100, 1) = Field(description="Account name (e.g. A1-GEN) or id")
    action: Action
    symbol: Symbol | None = Field(None, description="Needed by every action but FEE (and DIVIDEND, where optional)")
    quantity: Quantity = Field(0, ge=0, le=10**9, description="Shares or contracts; 0 for DIVIDEND and FEE")
    price: Price = "0"
    commission: Amount | None = Field(None, description="Commissions and fees, USD")
    amount: Amount | None = Field(None, description="The cash of a DIVIDEND or FEE, USD")
    trade_date: Day | None = Field(None, description="Needed except for an EXPIRE (default: the option's expiry)")
    multiplier: int = Field(100, ge=1, le=10_000)


class BatchFillIn(FillIn):
    key: Text(200, 1) | None = Field(
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
    account: Text(100, 1)
    action: Literal["BTO", "STO", "BTC", "STC"]
    symbol: Symbol
    quantity: Quantity = Field(ge=1, le=10**9)
    price: Price = "0"
    delta: Annotated[str, _typed_number(parsing.parse_delta, signed=True)] | None = Field(
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


class WeekIn(In):
    stage: Literal["predict", "confirm"]
    week_type: Literal["GREEN", "RED", "CHOP"]
    week: Day | None = Field(None, description="Any day of the week (default: this week)")


class WeekOut(BaseModel):
    week_start: date
    predicted: str | None = None
    confirmed: str | None = None
    replayed: bool = False


class HitRate(BaseModel):
    correct: int
    weeks: int


class WeekAccuracyOut(BaseModel):
    weeks: int
    correct: int
    by_predicted: dict[str, HitRate]


# --- tax ------------------------------------------------------------------------------------------

TaxNote = Annotated[str, Field(description="Every tax figure is an estimate, not tax advice")]


class TaxPaymentIn(In):
    account: Text(100, 1)
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
    AfterValidator(_no_nul),
    _typed_number(parsing.parse_percent),
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


# --- reports --------------------------------------------------------------------------------------


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


# --- lifecycle ------------------------------------------------------------------------------------


class AsOfIn(In):
    as_of: Day = Field(description="The day the rules run for, e.g. a quarter end")


class PlanRowOut(BaseModel):
    """One action a run would take. The fields after `reason` depend on the rule."""

    rule: str = Field(description="GEN_FORK, REV_FORK, MERGE, REINVEST or BUFFER")
    outcome: str = Field(description="APPLY; WAIT (the reason says what blocks it); ALERT")
    subject: str
    amount: Money
    reason: str
    account_id: int | None = None
    group_id: int | None = None
    target_account_id: int | None = None
    legs: dict[str, Money] | None = Field(None, description="Fork: cash for each new sleeve")
    surplus: Money | None = None
    deployable: Money | None = None
    combined_nav: Money | None = None
    moves: dict[str, Money] | None = Field(None, description="Merge: account id → cash it hands over")
    period: str | None = None
    realized_gain: Money | None = None
    tax_reserve: Money | None = None
    reinvestable: Money | None = None
    buffer_restore: Money | None = None
    earmarks: dict[str, Money] | None = None
    not_earmarked: Money | None = None
    still_below_buffer: bool | None = None
    buffer_shortfall: Money | None = Field(None, description="Reinvestment: what the account still lacks of its buffer")


class AppliedOut(BaseModel):
    rule: str
    action_id: int
    amount: Money
    reason: str
    account: str | None = None
    group: str | None = None
    group_id: int | None = None
    parent_group_id: int | None = None
    into: str | None = None
    target_group_id: int | None = None
    transfer_id: int | None = None
    period: str | None = None
    earmarks: dict[str, Money] | None = None


class WaitingOut(BaseModel):
    kind: str
    subject: str
    account_id: int
    account: str
    reason: str


class RunOut(BaseModel):
    as_of: date
    applied: list[AppliedOut] = Field(description="Actions this request applied (none when repeated)")
    waiting: list[WaitingOut]
    families: int
    families_skipped: int = Field(description="Families another worker held at the time")


class HistoryRowOut(BaseModel):
    id: int
    rule: str
    as_of: date
    period: str | None
    account: str
    group: str | None
    amount: Money
    reason: str


class EarmarkRowOut(BaseModel):
    account: str
    purpose: str
    planned: Money
    executed: Money
    open: Money


class TreeNodeOut(BaseModel):
    group_id: int
    name: str
    kind: str
    status: str
    nav: Money
    forked_from: str | None
    merged_into: str | None
    children: list["TreeNodeOut"]
