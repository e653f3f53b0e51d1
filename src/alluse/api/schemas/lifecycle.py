"""Bodies of the lifecycle routes (api/routers/lifecycle.py)."""

from datetime import date

from pydantic import BaseModel, Field

from alluse.api.schemas.common import Day, In, Money


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
    busy: bool = Field(
        description="Another worker was sweeping this portfolio as of this day: this request did nothing "
        "and left the sweep to it (repeat it once that one has ended to act on anything changed since)"
    )


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
