"""Lifecycle planners (ALLUSE_RULES §5): pure functions from a snapshot of an account or group to a plan.

Nothing here reads or writes a database. A planner answers "what would happen, with which amounts
and why"; the service layer applies a plan as one unit of work. Every amount is integer cents and
every split goes through `apply_bps` with the residue on one side, so the parts always add back up.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from alluse.domain.accounts import AccountKind, Allocation, CashSnapshot
from alluse.domain.errors import InvalidInput
from alluse.domain.money import BPS_PER_UNIT, apply_bps, format_usd
from alluse.domain.parsing import parse_money, parse_percent


class Rule(StrEnum):
    GEN_FORK = "GEN_FORK"
    REV_FORK = "REV_FORK"
    MERGE = "MERGE"
    REINVEST = "REINVEST"


class Outcome(StrEnum):
    APPLY = "APPLY"  # the rule acts
    WAIT = "WAIT"  # the rule would act but something blocks it; the reason says what


class EarmarkPurpose(StrEnum):
    TAX_RESERVE = "TAX_RESERVE"
    CONTRACTS = "CONTRACTS"  # Rev-Acc: collateral for new option contracts
    SHARES = "SHARES"  # Com-Acc: share purchases
    LEAPS = "LEAPS"


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """Thresholds and splits of §5; the defaults are the method's."""

    gen_fork_threshold: int = 5_000_000
    gen_fork_split: Allocation = Allocation(5000, 0, 5000)
    rev_fork_threshold: int = 50_000_000
    rev_fork_amount: int = 50_000_000
    rev_fork_allocation: Allocation = Allocation(4000, 3000, 3000)
    merge_threshold: int = 50_000_000
    short_term_tax_bps: int = 3000
    reinvest_pre_tax: bool = False
    rev_contracts_bps: int = 7500  # the rest goes to LEAPS
    com_shares_bps: int = 7500

    def __post_init__(self) -> None:
        for name in ("gen_fork_threshold", "rev_fork_threshold", "rev_fork_amount", "merge_threshold"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"lifecycle setting {name} must be positive")
        for name in ("short_term_tax_bps", "rev_contracts_bps", "com_shares_bps"):
            if not 0 <= getattr(self, name) <= BPS_PER_UNIT:
                raise InvalidInput(f"lifecycle setting {name} must be between 0 and 100 %")
        if self.gen_fork_split.rev_bps or not (self.gen_fork_split.gen_bps and self.gen_fork_split.com_bps):
            raise InvalidInput("a Gen-Acc fork funds a Gen-Acc and a Com-Acc only")
        if (
            min(self.rev_fork_allocation.gen_bps, self.rev_fork_allocation.rev_bps, self.rev_fork_allocation.com_bps)
            == 0
        ):
            raise InvalidInput("a Rev-Acc fork opens a PRIMARY-shaped group: every sleeve needs a share")
        if self.rev_fork_amount > self.rev_fork_threshold:
            raise InvalidInput("the Rev-Acc fork amount may not exceed its threshold")


# The settings a portfolio may change (`alluse config set portfolio KEY VALUE`), as a user names them:
# key → (LifecycleConfig field, how the value is written). The tax reserve is not here: it uses the
# portfolio's short-term tax rate (`alluse tax rates`).
LIFECYCLE_SETTINGS: dict[str, tuple[str, str]] = {
    "gen_fork_threshold": ("gen_fork_threshold", "usd"),
    "gen_fork_split": ("gen_fork_split", "gen/com"),
    "rev_fork_threshold": ("rev_fork_threshold", "usd"),
    "rev_fork_amount": ("rev_fork_amount", "usd"),
    "rev_fork_allocation": ("rev_fork_allocation", "gen/rev/com"),
    "merge_threshold": ("merge_threshold", "usd"),
    "rev_contracts_pct": ("rev_contracts_bps", "pct"),
    "com_shares_pct": ("com_shares_bps", "pct"),
    "reinvest_pre_tax": ("reinvest_pre_tax", "bool"),
}


def parse_lifecycle_setting(key: str, text: str) -> tuple[str, Any]:
    """A user's `KEY VALUE` as (field, JSON-able value to store); refuses an unknown key or a bad value.
    Whether the whole configuration still holds together is `lifecycle_config`'s check."""
    if key not in LIFECYCLE_SETTINGS:
        raise InvalidInput(f"unknown lifecycle setting {key!r}; settable: {', '.join(LIFECYCLE_SETTINGS)}")
    field_name, how = LIFECYCLE_SETTINGS[key]
    text = text.strip()
    if how == "usd":
        return field_name, parse_money(text, field=key)
    if how == "pct":
        return field_name, parse_percent(text, field=key)
    if how == "bool":
        if text.lower() not in ("true", "false", "yes", "no"):
            raise InvalidInput(f"{key} is true or false, got {text!r}")
        return field_name, text.lower() in ("true", "yes")
    parts = text.replace(",", "/").split("/")
    if how == "gen/com":
        if len(parts) != 2:
            raise InvalidInput(f"{key} is Gen/Com percentages like 50/50, got {text!r}")
        gen, com = (parse_percent(x) for x in parts)
        return field_name, list(astuple(Allocation(gen, 0, com)))
    if len(parts) != 3:
        raise InvalidInput(f"{key} is Gen/Rev/Com percentages like 40/30/30, got {text!r}")
    return field_name, list(astuple(Allocation(*(parse_percent(x) for x in parts))))


def lifecycle_config(stored: dict[str, Any], base: LifecycleConfig | None = None) -> LifecycleConfig:
    """The method's defaults (or `base`) with a portfolio's stored settings applied; validates the result."""
    known = {f for f, _ in LIFECYCLE_SETTINGS.values()}
    changes: dict[str, Any] = {}
    for name, value in stored.items():
        if name not in known:
            raise InvalidInput(f"stored lifecycle setting {name!r} is not a setting")
        changes[name] = Allocation(*value) if isinstance(value, list) else value
    return replace(base or LifecycleConfig(), **changes)


def lifecycle_display(cfg: LifecycleConfig) -> dict[str, str]:
    """Every settable value as a user would type it back."""
    out = {}
    for key, (name, how) in LIFECYCLE_SETTINGS.items():
        v = getattr(cfg, name)
        if how == "usd":
            out[key] = format_usd(v)
        elif how == "pct":
            out[key] = _pct(v)
        elif how == "bool":
            out[key] = str(v).lower()
        elif how == "gen/com":
            out[key] = f"{_pct(v.gen_bps)}/{_pct(v.com_bps)}"
        else:
            out[key] = "/".join(_pct(x) for x in astuple(v))
    return out


def _pct(bps: int) -> str:
    return f"{Decimal(bps) / 100:g}"


@dataclass(frozen=True, slots=True)
class SurplusFigures:
    """The parts of post-tax surplus (§5): NAV − base capital − unpaid tax on realized gains − tax on
    unrealized gains."""

    nav: int
    base_capital: int
    unpaid_tax_on_realized: int
    tax_on_unrealized: int

    @property
    def surplus(self) -> int:
        return self.nav - self.base_capital - self.unpaid_tax_on_realized - self.tax_on_unrealized


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the lifecycle planners know about one account: its money (the buffer rule's
    `CashSnapshot`), its post-tax surplus figures (the fork rules only) and its group. The fork and
    reinvestment planners take one; the merge planner takes those of a FORK group's accounts."""

    account_id: int
    cash: CashSnapshot
    figures: SurplusFigures | None  # needed by the fork rules only
    group_id: int = 0

    @property
    def kind(self) -> AccountKind:
        return self.cash.kind

    @property
    def label(self) -> str:
        return self.cash.label


@dataclass(frozen=True, slots=True)
class ForkPlan:
    rule: Rule
    outcome: Outcome
    account_id: int
    label: str
    amount: int
    legs: dict[AccountKind, int]  # cash for each new sleeve
    surplus: int
    deployable: int
    reason: str

    @property
    def brokerage_needed(self) -> int:
        return len(self.legs)


def plan_gen_fork(acc: AccountState, cfg: LifecycleConfig, pool_free: int | None = None) -> ForkPlan | None:
    """§5.1. `pool_free`: brokerage accounts the fork may take (None: the paper broker makes them)."""
    if acc.kind is not AccountKind.GEN or acc.figures is None:
        return None
    surplus, deployable = acc.figures.surplus, acc.cash.deployable_cash
    if surplus < cfg.gen_fork_threshold:
        return None
    amount = min(surplus, deployable)
    legs = {k: v for k, v in cfg.gen_fork_split.split(amount).items() if k in cfg.gen_fork_split.kinds()}
    if deployable < cfg.gen_fork_threshold:
        return _waiting_for_cash(Rule.GEN_FORK, acc, surplus, deployable, cfg.gen_fork_threshold)
    return _with_pool(
        ForkPlan(
            Rule.GEN_FORK, Outcome.APPLY, acc.account_id, acc.label, amount, legs, surplus, deployable,
            f"post-tax surplus {format_usd(surplus)} ≥ {format_usd(cfg.gen_fork_threshold)}: fork "
            f"{format_usd(amount)} into a new FORK group (Gen {format_usd(legs[AccountKind.GEN])}, "
            f"Com {format_usd(legs[AccountKind.COM])})",
        ),
        pool_free,
    )  # fmt: skip


def _waiting_for_cash(rule: Rule, acc: AccountState, surplus: int, deployable: int, threshold: int) -> ForkPlan:
    """A fork whose surplus sits in open positions waits until deployable cash reaches the threshold."""
    return ForkPlan(
        rule, Outcome.WAIT, acc.account_id, acc.label, 0, {}, surplus, deployable,
        f"post-tax surplus {format_usd(surplus)} sits in open positions: deployable cash "
        f"{format_usd(deployable)} is below {format_usd(threshold)}",
    )  # fmt: skip


def plan_rev_fork(acc: AccountState, cfg: LifecycleConfig, pool_free: int | None = None) -> ForkPlan | None:
    """§5.2: a fixed amount into a new PRIMARY-shaped group recorded as forked from this Rev-Acc."""
    if acc.kind is not AccountKind.REV or acc.figures is None:
        return None
    surplus, deployable = acc.figures.surplus, acc.cash.deployable_cash
    if surplus < cfg.rev_fork_threshold:
        return None
    amount = cfg.rev_fork_amount
    legs = cfg.rev_fork_allocation.split(amount)
    if deployable < cfg.rev_fork_threshold:
        return _waiting_for_cash(Rule.REV_FORK, acc, surplus, deployable, cfg.rev_fork_threshold)
    return _with_pool(
        ForkPlan(
            Rule.REV_FORK, Outcome.APPLY, acc.account_id, acc.label, amount, legs, surplus, deployable,
            f"post-tax surplus {format_usd(surplus)} ≥ {format_usd(cfg.rev_fork_threshold)}: fork "
            f"{format_usd(amount)} into a new group "
            + ", ".join(f"{k.value.title()} {format_usd(v)}" for k, v in legs.items()),
        ),
        pool_free,
    )  # fmt: skip


def _with_pool(plan: ForkPlan, pool_free: int | None) -> ForkPlan:
    if pool_free is None or pool_free >= plan.brokerage_needed:
        return plan
    return ForkPlan(
        plan.rule, Outcome.WAIT, plan.account_id, plan.label, 0, {}, plan.surplus, plan.deployable,
        f"brokerage pool is short: the fork needs {plan.brokerage_needed} unmapped brokerage accounts, "
        f"the pool has {pool_free} (register more with `alluse broker add`)",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MergePlan:
    rule: Rule
    outcome: Outcome
    group_id: int
    group_name: str
    target_account_id: int
    target_label: str
    combined_nav: int
    moves: dict[int, int]  # account id -> cash it hands to the target (≥ 0)
    reason: str


def plan_merge(
    group_id: int,
    group_name: str,
    members: list[AccountState],
    target: tuple[int, str] | None,
    cfg: LifecycleConfig,
) -> MergePlan | None:
    """§5.3: a FORK group whose combined NAV reaches the threshold merges into the spawning group's
    Com-Acc (`target`; None when no active ancestor is left)."""
    nav = sum(m.cash.nav for m in members)
    if nav < cfg.merge_threshold:
        return None
    if target is None:
        return MergePlan(
            Rule.MERGE, Outcome.WAIT, group_id, group_name, 0, "", nav, {},
            f"group {group_name} reached {format_usd(nav)} but has no active ancestor Com-Acc to merge into",
        )  # fmt: skip
    moves = {m.account_id: m.cash.cash for m in members if m.cash.cash}
    return MergePlan(
        Rule.MERGE, Outcome.APPLY, group_id, group_name, target[0], target[1], nav, moves,
        f"combined NAV {format_usd(nav)} ≥ {format_usd(cfg.merge_threshold)}: merge group {group_name} "
        f"into {target[1]}",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReinvestPlan:
    rule: Rule
    outcome: Outcome
    account_id: int
    label: str
    period: str
    realized_gain: int
    tax_reserve: int
    reinvestable: int
    buffer_restore: int  # reinvestable held back (not earmarked) because the account is short of its buffer
    earmarks: dict[EarmarkPurpose, int]  # the investment split (the tax reserve is separate)
    not_earmarked: int  # reinvestable cash not earmarked: held back for the buffer or beyond deployable cash
    still_below_buffer: bool
    reason: str
    buffer_shortfall: int = 0  # what the account still lacks of its buffer after the plan (it moves no cash)

    @property
    def all_earmarks(self) -> dict[EarmarkPurpose, int]:
        out = {EarmarkPurpose.TAX_RESERVE: self.tax_reserve, **self.earmarks}
        return {k: v for k, v in out.items() if v}


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def is_quarter_end(day: date) -> bool:
    return (day.month, day.day) in ((3, 31), (6, 30), (9, 30), (12, 31))


def plan_reinvestment(acc: AccountState, realized_gain: int, period: str, cfg: LifecycleConfig) -> ReinvestPlan | None:
    """§5.4 for one Rev-Acc or Com-Acc and one quarter's net realized gain (pre-tax).

    The gain is already cash in the account, so the plan moves no cash: "restoring the buffer" can only
    mean holding the reinvestable back (not earmarking it) while the account, after the new tax
    reserve, is short of its buffer. Holding back adds no cash, so the shortfall is still there after
    the plan: it is reported, and the account is flagged still below its buffer. Only what fits in
    deployable cash is split into earmarks."""
    if acc.kind not in (AccountKind.REV, AccountKind.COM) or realized_gain <= 0:
        return None
    tax = apply_bps(realized_gain, cfg.short_term_tax_bps)
    reinvestable = realized_gain if cfg.reinvest_pre_tax else realized_gain - tax
    snap = acc.cash
    room = snap.cash - snap.cash_buffer - snap.collateral - snap.earmarked - tax
    shortfall = max(0, -room)
    restore = min(reinvestable, shortfall)
    investable = min(reinvestable - restore, max(0, room))
    if acc.kind is AccountKind.REV:
        first, first_bps = EarmarkPurpose.CONTRACTS, cfg.rev_contracts_bps
    else:
        first, first_bps = EarmarkPurpose.SHARES, cfg.com_shares_bps
    a = apply_bps(investable, first_bps)
    earmarks = {k: v for k, v in {first: a, EarmarkPurpose.LEAPS: investable - a}.items() if v}
    not_earmarked = reinvestable - investable
    still_below = shortfall > 0
    parts = [
        f"{period} realized gain {format_usd(realized_gain)}",
        f"tax reserve {format_usd(tax)}",
        f"reinvestable {format_usd(reinvestable)} ({'pre' if cfg.reinvest_pre_tax else 'post'}-tax)",
    ]
    if shortfall:
        parts.append(
            f"buffer short {format_usd(shortfall)} after the tax reserve: {format_usd(restore)} held back for it, "
            f"which adds no cash, so the shortfall left is {format_usd(shortfall)}"
        )
    parts += [f"{k.value.lower()} {format_usd(v)}" for k, v in earmarks.items()]
    if not_earmarked - restore:
        parts.append(f"{format_usd(not_earmarked - restore)} left unearmarked: no deployable cash for it")
    if still_below:
        parts.append("account is still below its cash buffer")
    return ReinvestPlan(
        Rule.REINVEST, Outcome.APPLY, acc.account_id, acc.label, period, realized_gain, tax, reinvestable,
        restore, earmarks, not_earmarked, still_below, "; ".join(parts), shortfall,
    )  # fmt: skip
